"""Memory-bound layer passes split over the batch: chunks on all CPU cores.

Activations, pooling and batch norm touch every value once or twice and do little arithmetic,
so their time is memory traffic and the count of array operations. A large pass (on the CPU
backend over 16 MB) goes through the batch in chunks of a few MB, whose temporaries (masks,
centred values) mostly stay in cache, and the chunks run on all cores (`Backend.pass_chunks`
and `Backend.map_chunks`). A small pass, and on a GPU any pass up to `pass_split_bytes`, is one
chunk: the layer then runs exactly as it would without this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from xnet.backends import Array, Backend


def sample_bytes(backend: Backend, x: Array) -> int:
    """Bytes of one sample x[i] of a float batch x."""
    return math.prod(x.shape[1:]) * (backend.xp.finfo(x.dtype).bits // 8)


def map_batch(
    backend: Backend,
    fn: Callable[..., tuple[Array, ...]],
    inputs: Sequence[Array],
    outputs: int = 1,
    temporaries: int = 2,
) -> list[Array]:
    """outputs[i][lo:hi] = fn(*(a[lo:hi] for a in inputs))[i] over batch chunks [lo, hi).

    Every input and output has the shape and dtype of inputs[0]; `temporaries` is how many more
    arrays of a chunk's size fn creates, which sizes the chunks to fit the cache.
    """
    x = inputs[0]
    arrays = len(inputs) + outputs + temporaries
    # small passes (the usual MLP batch) leave at once: this check costs well under a microsecond,
    # the exact size (a dtype look-up) a few; at 8 bytes a value no dtype is larger
    if math.prod(x.shape) * 8 * arrays <= backend.pass_split_bytes:
        return list(fn(*inputs))
    chunks = backend.pass_chunks(x.shape[0], sample_bytes(backend, x) * arrays)
    if len(chunks) == 1:
        return list(fn(*inputs))
    outs = [backend.empty(tuple(x.shape), x.dtype) for _ in range(outputs)]

    def run(lo: int, hi: int) -> None:
        for out, part in zip(outs, fn(*(a[lo:hi, ...] for a in inputs)), strict=True):
            out[lo:hi, ...] = part

    backend.map_chunks(run, chunks)
    return outs


__all__ = ["map_batch", "sample_bytes"]
