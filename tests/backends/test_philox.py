"""Philox-4x64-10: the published known answers, and every implementation giving the same words."""

from __future__ import annotations

import numpy as np
import pytest
from cuda_on_host import ElementwiseKernel, compiler

from xnet.backends import get_backend
from xnet.backends.cuda_philox import PHILOX_KERNEL, PHILOX_SOURCE
from xnet.backends.philox import block_range, numpy_words, philox4x64, stream_words

F = 0xFFFF_FFFF_FFFF_FFFF
PI = (
    0x243F6A8885A308D3,
    0x13198A2E03707344,
    0xA4093822299F31D0,
    0x082EFA98EC4E6C89,
    0x452821E638D01377,
    0xBE5466CF34E90C6C,
)
# Random123's kat_vectors for philox4x64: rounds, counter (4 words), key (2 words) -> 4 words
KAT = [
    (7, (0, 0, 0, 0), (0, 0), (0x5DC8EE6268EC62CD, 0x139BC570B6C125A0, 0x84D6DEB4FB65F49E, 0xAFF7583376D378C2)),
    (7, (F, F, F, F), (F, F), (0x071DD84367903154, 0x48E2BBDC722B37D1, 0x6AFA9890BB89F76C, 0x9194C8D8ADA56AC7)),
    (7, PI[:4], PI[4:], (0x513A366704EDF755, 0xF05D9924C07044D3, 0xBEF2CB9CBEA74C6C, 0x8DB948DE4CAA1F8A)),
    (10, (0, 0, 0, 0), (0, 0), (0x16554D9ECA36314C, 0xDB20FE9D672D0FDC, 0xD7E772CEE186176B, 0x7E68B68AEC7BA23B)),
    (10, (F, F, F, F), (F, F), (0x87B092C3013FE90B, 0x438C3C67BE8D0224, 0x9CC7D7C69CD777B6, 0xA09CAEBF594F0BA0)),
    (10, PI[:4], PI[4:], (0xA528F45403E61D95, 0x38C72DBD566E9788, 0xA5A1610E72FD18B5, 0x57BD43B5E52B7FE6)),
]
TEN_ROUNDS = [k for k in KAT if k[0] == 10]


@pytest.mark.parametrize(("rounds", "counter", "key", "expected"), KAT)
def test_reference_gives_the_published_answers(backend, rounds, counter, key, expected):
    xp = backend.xp
    c = tuple(xp.asarray([v], dtype=xp.uint64, device=backend.device) for v in counter)
    got = tuple(int(backend.to_numpy(w)[0]) for w in philox4x64(c, key, rounds))
    assert got == expected


@pytest.mark.parametrize(("rounds", "counter", "key", "expected"), TEN_ROUNDS)
def test_numpy_gives_the_published_answers(rounds, counter, key, expected):
    # block b of stream (key, epoch) has the counter (b, epoch, 0, 0): the vectors' upper words must be 0 here,
    # so NumPy's Philox is checked directly with the same counter convention numpy_words uses
    c = sum(v << (64 * i) for i, v in enumerate(counter))
    gen = np.random.Philox(key=key[0] | (key[1] << 64), counter=(c - 1) % (1 << 256))
    assert tuple(int(w) for w in gen.random_raw(4)) == expected


@pytest.mark.skipif(compiler() is None, reason="no C++ compiler to run the CUDA source on the host")
@pytest.mark.parametrize(("rounds", "counter", "key", "expected"), [k for k in TEN_ROUNDS if k[1][2:] == (0, 0)])
def test_cuda_source_gives_the_published_answers(rounds, counter, key, expected):
    kernel = ElementwiseKernel(preamble=PHILOX_SOURCE, **PHILOX_KERNEL)
    out = np.empty(4, np.uint64)
    kernel(np.uint64(key[0]), np.uint64(key[1]), np.uint64(counter[1]), np.uint64(4 * counter[0]), out)
    assert tuple(int(w) for w in out) == expected


CASES = [
    ((0, 0), 0, 0, 1),
    ((7, 3), 0, 0, 13),
    ((7, 3), 5, 6, 11),  # starting inside a block
    ((2**63 - 1, F), 2**40, 1021, 70),
    ((123, 456), 1, 4 * 2**40 + 3, 9),  # far into the stream
]


@pytest.mark.parametrize(("key", "epoch", "start", "n"), CASES)
def test_every_backend_draws_the_reference_words(backend, key, epoch, start, n):
    """Each backend's random_words (NumPy in C, the strict reference, the CUDA kernel) against the reference."""
    np_ref = stream_words(np, "cpu", key, epoch, start, n)
    got = backend.to_numpy(backend.random_words(key, epoch, start, n))
    assert got.dtype == np.uint64 and got.shape == (n,)
    np.testing.assert_array_equal(got, np_ref)
    np.testing.assert_array_equal(numpy_words(key, epoch, start, n), np_ref)


@pytest.mark.skipif(compiler() is None, reason="no C++ compiler to run the CUDA source on the host")
@pytest.mark.parametrize(("key", "epoch", "start", "n"), CASES)
def test_cuda_source_draws_the_reference_words(key, epoch, start, n):
    kernel = ElementwiseKernel(preamble=PHILOX_SOURCE, **PHILOX_KERNEL)
    out = np.empty(n, np.uint64)
    kernel(np.uint64(key[0]), np.uint64(key[1]), np.uint64(epoch), np.uint64(start), out)
    np.testing.assert_array_equal(out, stream_words(np, "cpu", key, epoch, start, n))


def test_words_split_anywhere_join_into_the_same_stream():
    whole = numpy_words((5, 6), 2, 0, 40)
    for cut in (1, 3, 4, 17):
        parts = np.concatenate([numpy_words((5, 6), 2, 0, cut), numpy_words((5, 6), 2, cut, 40 - cut)])
        np.testing.assert_array_equal(parts, whole)


def test_keys_and_epochs_name_different_streams():
    a = numpy_words((1, 2), 0, 0, 8)
    for other in (numpy_words((1, 3), 0, 0, 8), numpy_words((2, 2), 0, 0, 8), numpy_words((1, 2), 1, 0, 8)):
        assert not np.any(a == other)


def test_block_range():
    assert block_range(0, 4) == (0, 1, 0)
    assert block_range(5, 3) == (1, 1, 1)
    assert block_range(5, 4) == (1, 2, 1)
    assert block_range(8, 1) == (2, 1, 0)


def test_cpu_backend_uses_numpys_philox():
    """The NumPy backend's words come from NumPy's C Philox, not the slow reference (same bits, checked above)."""
    b = get_backend("cpu")
    calls = []
    original = np.random.Philox
    try:
        np.random.Philox = lambda *a, **k: calls.append(k) or original(*a, **k)
        b.random_words((1, 2), 0, 0, 4)
    finally:
        np.random.Philox = original
    assert len(calls) == 1
