"""Seeded random sources that draw arrays for a backend."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np

Shape = tuple[int, ...]


class Rng:
    """Seeded random numbers on a backend's device. Same seed -> same numbers, every run."""

    def seed(self, seed: int | tuple[int, ...]) -> None:
        """Restart the stream from `seed` (an int, or a tuple such as (seed, epoch))."""
        raise NotImplementedError

    def normal(self, shape: Shape, mean: float = 0.0, std: float = 1.0, dtype: Any = None) -> Any:
        """Array of `shape` drawn from N(mean, std^2)."""
        raise NotImplementedError

    def uniform(self, shape: Shape, low: float = 0.0, high: float = 1.0, dtype: Any = None) -> Any:
        """Array of `shape` drawn from U[low, high)."""
        raise NotImplementedError

    def bernoulli(self, shape: Shape, p: float, dtype: Any = None) -> Any:
        """Float array of `shape`: 1 with probability p, else 0."""
        raise NotImplementedError

    def permutation(self, n: int) -> Any:
        """A random permutation of 0..n-1 as an int64 array (n,)."""
        raise NotImplementedError

    def integers(self, low: int, high: int, shape: Shape) -> Any:
        """Int64 array of `shape` drawn uniformly from [low, high)."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """The stream's position, JSON-serialisable, for checkpoints."""
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        """Continue the stream from a `state_dict()`."""
        raise NotImplementedError


class HostRng(Rng):
    """NumPy's PCG64 on the host; draws are moved to the device by `to_device`.

    The numpy and strict backends share it, so the same seed gives the same numbers on both.
    """

    def __init__(self, seed: int, to_device: Callable[[np.ndarray, Any], Any]):
        self._to_device = to_device
        self.seed(seed)

    def seed(self, seed: int | tuple[int, ...]) -> None:
        entropy = list(seed) if isinstance(seed, tuple) else seed
        self._gen = np.random.Generator(np.random.PCG64(entropy))

    def normal(self, shape, mean=0.0, std=1.0, dtype=None):
        a = self._gen.standard_normal(shape, dtype=np.float64) * std + mean
        return self._to_device(a, dtype)

    def uniform(self, shape, low=0.0, high=1.0, dtype=None):
        return self._to_device(self._gen.uniform(low, high, shape), dtype)

    def bernoulli(self, shape, p, dtype=None):
        # float32 draws are twice as fast and plenty for a mask
        mask = self._gen.random(shape, dtype=np.float32) < p
        return self._to_device(mask, dtype or "float32")

    def permutation(self, n):
        return self._to_device(self._gen.permutation(n).astype(np.int64), "int64")

    def integers(self, low, high, shape):
        return self._to_device(self._gen.integers(low, high, shape, dtype=np.int64), "int64")

    def state_dict(self):
        return self._gen.bit_generator.state

    def load_state_dict(self, state):
        if state.get("bit_generator") == "PCG64":
            self._gen.bit_generator.state = state
            return
        # a GPU run's state (cuRAND, resumed here on the CPU) cannot be continued by PCG64: go on
        # with a stream that this state determines, so the resume is still reproducible
        text = json.dumps(state, sort_keys=True, default=str)
        self.seed(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little"))
