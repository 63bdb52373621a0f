"""Philox-4x64-10: the counter-based generator behind every random number xnet draws.

A counter-based generator is a keyed bijection of its counter: block `b` of a stream is
philox(key, counter(b)), four 64-bit words, computed from nothing but the key and `b`. So a
stream needs no hidden state (its position is one integer), any block can be computed out of
order or in parallel, and every array library that does 64-bit integer arithmetic computes
the same bits. This is the generator of Salmon et al., "Parallel random numbers: as easy as
1, 2, 3" (SC11), in its Random123 form; NumPy ships the same one as `np.random.Philox`.

xnet's streams: the key is (seed, stream id) and the counter of block b is (b, epoch, 0, 0),
so a stream is named by (seed, stream id, epoch) and word w of it lies in block w // 4.

`philox4x64` and `stream_words` below are the reference, written once in Array API integer
operations: the strict backend runs them as they are. NumPy's C implementation (`numpy_words`)
and the CUDA kernel (`cuda_philox.py`) are faster ways to compute the same words; tests
compare both with the reference and with the published known-answer vectors.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF
# Random123's constants for Philox-4x64: the two multipliers and the Weyl key increments
M0, M1 = 0xD2E7_470E_E14C_6C93, 0xCA5A_8263_9512_1157
W0, W1 = 0x9E37_79B9_7F4A_7C15, 0xBB67_AE85_84CA_A73B
ROUNDS = 10

Key = tuple[int, int]


def _mulhilo(a: Any, m: int) -> tuple[Any, Any]:
    """(high, low) 64-bit halves of the 128-bit product a * m, for a uint64 array `a`.

    The standard has no 128-bit product, so it is assembled from four 32 x 32 -> 64-bit ones,
    none of which can overflow; `lo` is assembled too rather than relying on wrap-around.
    """
    a0, a1 = a & MASK32, a >> 32
    m0, m1 = m & MASK32, m >> 32
    p00, p01, p10, p11 = a0 * m0, a0 * m1, a1 * m0, a1 * m1
    mid = (p00 >> 32) + (p01 & MASK32) + (p10 & MASK32)  # < 3 * 2**32: no overflow
    hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32)
    lo = (p00 & MASK32) | ((mid & MASK32) << 32)
    return hi, lo


def philox4x64(counter: tuple[Any, Any, Any, Any], key: Key, rounds: int = ROUNDS) -> tuple[Any, Any, Any, Any]:
    """Philox-4x64-`rounds` of four same-shaped uint64 counter arrays under `key`: four uint64 arrays."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + W0) & MASK64, (k1 + W1) & MASK64
        hi0, lo0 = _mulhilo(c0, M0)
        hi1, lo1 = _mulhilo(c2, M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def block_range(start: int, n: int) -> tuple[int, int, int]:
    """(first block, number of blocks, offset of word `start` in the first block) covering words start..start+n-1."""
    first = start // 4
    count = (start + n + 3) // 4 - first
    return first, count, start - 4 * first


def stream_words(xp: ModuleType, device: Any, key: Key, epoch: int, start: int, n: int) -> Any:
    """Words start..start+n-1 of stream (key, epoch) as a uint64 array (n,) on `device` (the reference)."""
    first, count, skip = block_range(start, n)
    u64 = xp.uint64
    blocks = xp.arange(first, first + count, dtype=u64, device=device)
    zeros = xp.zeros((count,), dtype=u64, device=device)
    epochs = xp.full((count,), epoch, dtype=u64, device=device)
    out = philox4x64((blocks, epochs, zeros, zeros), key)
    words = xp.reshape(xp.stack(out, axis=1), (4 * count,))  # block b gives words 4b .. 4b+3
    return words[skip : skip + n]


def numpy_words(key: Key, epoch: int, start: int, n: int) -> np.ndarray:
    """`stream_words` computed by NumPy's Philox in C (about 100x faster than the reference on NumPy)."""
    first, count, skip = block_range(start, n)
    counter = first + (epoch << 64)
    # NumPy's Philox adds one to its counter before computing each block, so it starts one below
    gen = np.random.Philox(key=key[0] | (key[1] << 64), counter=(counter - 1) % (1 << 256))
    return gen.random_raw(skip + n)[skip:]


__all__ = ["Key", "block_range", "numpy_words", "philox4x64", "stream_words"]
