"""The default CPU backend: NumPy >= 2, whose main namespace follows the Array API standard."""

from __future__ import annotations

from typing import Any

import numpy as np

from xnet.backends import cpu_threads
from xnet.backends.base import Backend
from xnet.backends.rng import HostRng


class NumpyBackend(Backend):
    """NumPy on the CPU. The namespace is `numpy` itself, with no wrapper (wrappers cost time)."""

    name = "numpy"

    def __init__(self, seed: int = 0):
        self.xp = np
        self.device = "cpu"
        self.rng = HostRng(seed, self.asarray)
        cpu_threads.threads()  # decide once per process how the cores are used (see cpu_threads.py)

    @property
    def device_name(self) -> str:
        return "cpu"

    def asarray(self, a: Any, dtype: Any = None) -> np.ndarray:
        return np.asarray(a, dtype=self.dtype(dtype) if dtype is not None else None)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # OpenBLAS runs on one thread (its spinning workers stall on busy machines); large
        # products are split over xnet's own sleeping-when-idle threads instead
        return cpu_threads.matmul(a, b)
