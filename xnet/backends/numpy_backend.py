"""The default CPU backend: NumPy >= 2, whose main namespace follows the Array API standard."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from xnet.backends.base import Backend, _offsets
from xnet.backends.rng import HostRng


class NumpyBackend(Backend):
    """NumPy on the CPU. The namespace is `numpy` itself, with no wrapper (wrappers cost time)."""

    name = "numpy"

    def __init__(self, seed: int = 0):
        self.xp = np
        self.device = "cpu"
        self.rng = HostRng(seed, self.asarray)

    @property
    def device_name(self) -> str:
        return "cpu"

    def asarray(self, a: Any, dtype: Any = None) -> np.ndarray:
        return np.asarray(a, dtype=self.dtype(dtype) if dtype is not None else None)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def col2im(self, cols, padded_hw, stride, dilation):
        # NumPy runs one ufunc on one core: the batch is split over a small thread pool (the
        # adds release the GIL), and each part adds into its own samples, so parts never race.
        N, G, kh, kw, Cg, Ho, Wo = cols.shape
        out = np.zeros((N, G * Cg, *padded_hw), cols.dtype)
        offsets = list(_offsets((kh, kw), stride, dilation, (Ho, Wo)))

        def add_part(lo: int, hi: int) -> None:
            for i, j, rows, cols_ in offsets:
                # splitting C into (G, Cg) is always a view; copy=False makes sure of it
                dst = np.reshape(out[lo:hi, :, rows, cols_], (hi - lo, G, Cg, Ho, Wo), copy=False)
                np.add(dst, cols[lo:hi, :, i, j], out=dst)

        parts = min(_CORES, N) if cols.size >= _PARALLEL_MIN_ELEMENTS else 1
        if parts <= 1:
            add_part(0, N)
        else:
            bounds = [N * k // parts for k in range(parts + 1)]
            list(_pool().map(add_part, bounds[:-1], bounds[1:]))
        return out


_CORES = os.cpu_count() or 1
_PARALLEL_MIN_ELEMENTS = 1 << 18  # below this, thread hand-off costs more than it saves
_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """A process-wide pool of one thread per core for the kernels above, made on first use."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=_CORES, thread_name_prefix="xnet-numpy")
    return _POOL
