"""Softmax cross-entropy against integer labels on batches of one shape, with every choice made once.

The CPU counterpart of the loss's per-step work at small batches: CrossEntropy asks
NumpyBackend.fused_cross_entropy once per batch shape for a CrossEntropyKernels and calls it
from then on (see dense_activation.py for why: at batch 16 the checks of table.softmax_cross_entropy
on every call cost more than its arithmetic). Only batches that one thread computes whole come
here; larger ones keep table.softmax_cross_entropy, which splits them over the threads.
"""

from __future__ import annotations

import numpy as np

from xnet.backends.cpu_kernels import probes, rows
from xnet.backends.fast_paths import FLOATS

LABEL_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


class CrossEntropyKernels:
    """(terms (N,), (softmax - q) * scale (N, K)) of logits (N, K) of one dtype, N and K fixed; see `make`."""

    def __init__(self, shape: tuple[int, int], dtype: np.dtype):
        self.shape, self.dtype = shape, dtype
        self._scalars: tuple[float, float, tuple[np.generic, ...]] | None = None  # the last (smoothing, scale, ...)
        self.hits = 0  # how many rows of the last run had their label as argmax (accuracy's count, for free)

    def run(
        self, z: np.ndarray, labels: np.ndarray, smoothing: float, scale: float
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """rows.ce_labels on logits z (N, K) and labels (N,), or None for arrays it does not take."""
        if type(z) is not np.ndarray or z.dtype != self.dtype or not z.flags.c_contiguous or z.shape != self.shape:
            return None
        if type(labels) is not np.ndarray or labels.dtype not in LABEL_DTYPES or not labels.flags.c_contiguous:
            return None
        if labels.shape != self.shape[:1]:
            return None
        N, K = self.shape
        made = self._scalars
        if made is None or made[0] != smoothing or made[1] != scale:  # rounded to z's dtype once
            t = self.dtype.type
            made = self._scalars = (smoothing, scale, (t(1.0 - smoothing), t(smoothing / K), t(scale)))
        terms, grad = np.empty((N,), self.dtype), np.empty((N, K), self.dtype)
        self.hits = rows.ce_labels(z, labels.astype(np.int64, copy=False), *made[2], terms, grad, 0, N)
        return terms, grad


def make(shape: tuple[int, ...], dtype: np.dtype, max_classes: int, max_bytes: int) -> CrossEntropyKernels | None:
    """The kernels for logits of `shape` (N, K) and `dtype`, K up to `max_classes` and a pass over three such arrays
    at most `max_bytes` (one thread's); else None (and None where the first-use check failed)."""
    if len(shape) != 2 or dtype not in FLOATS or shape[1] > max_classes:
        return None
    if 3 * shape[0] * shape[1] * dtype.itemsize > max_bytes:
        return None
    if not probes.ok("softmax_cross_entropy", dtype):
        return None
    return CrossEntropyKernels((shape[0], shape[1]), dtype)
