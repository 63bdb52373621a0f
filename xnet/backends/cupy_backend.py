"""The CUDA backend: CuPy through array-api-compat. Imported only when a cuda device is asked for."""

from __future__ import annotations

from typing import Any

import numpy as np

from xnet.backends.base import Backend, BackendUnavailable
from xnet.backends.rng import Rng

INSTALL_HINT = 'pip install "xnet[cuda12]" (or "xnet[cuda13]" for CUDA 13)'


def import_cupy() -> Any:
    """Import CuPy and check a GPU is visible; raise BackendUnavailable saying which is missing."""
    try:
        import cupy
    except Exception as e:  # ImportError, or a broken CUDA install raising at import
        raise BackendUnavailable(f"CuPy is not installed ({e.__class__.__name__}); {INSTALL_HINT}") from e
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        raise BackendUnavailable(f"CuPy is installed but no CUDA GPU is usable: {e}") from e
    if count == 0:
        raise BackendUnavailable("CuPy is installed but no CUDA GPU is visible")
    return cupy


class CupyRng(Rng):
    """CuPy's generator, seeded from (seed, counter) so a checkpointed position can be restored.

    CuPy's generator state cannot be exported, so the stream restarts at every `seed()` call and
    the state is the seed itself (the trainer reseeds at each epoch).
    """

    def __init__(self, cupy: Any, backend: CupyBackend, seed: int):
        self._cp = cupy
        self._backend = backend
        self.seed(seed)

    def seed(self, seed):
        self._seed = list(seed) if isinstance(seed, tuple) else [int(seed)]
        mixed = int(np.random.SeedSequence(self._seed).generate_state(1, np.uint64)[0])
        self._gen = self._cp.random.RandomState(mixed)

    def _cast(self, a, dtype):
        return a if dtype is None else a.astype(self._backend.dtype(dtype), copy=False)

    def normal(self, shape, mean=0.0, std=1.0, dtype=None):
        return self._cast(self._gen.normal(mean, std, shape), dtype)

    def uniform(self, shape, low=0.0, high=1.0, dtype=None):
        return self._cast(self._gen.uniform(low, high, shape), dtype)

    def bernoulli(self, shape, p, dtype=None):
        return self._cast(self._gen.random_sample(shape, dtype=np.float32) < p, dtype or "float32")

    def permutation(self, n):
        return self._gen.permutation(n).astype(np.int64)

    def integers(self, low, high, shape):
        return self._gen.randint(low, high, shape, dtype=np.int64)

    def state_dict(self):
        return {"seed": self._seed}

    def load_state_dict(self, state):
        self.seed(tuple(state["seed"]))


class CupyBackend(Backend):
    """CuPy on one CUDA device."""

    name = "cupy"

    def __init__(self, seed: int = 0, index: int = 0):
        cupy = import_cupy()
        count = cupy.cuda.runtime.getDeviceCount()
        if not 0 <= index < count:
            raise BackendUnavailable(f"cuda:{index} asked for, but {count} GPU(s) are visible")
        import array_api_compat.cupy as xp

        self._cp = cupy
        self.xp = xp
        self.index = index
        self.device = cupy.cuda.Device(index)
        self.device.use()
        self.rng = CupyRng(cupy, self, seed)

    @property
    def device_name(self) -> str:
        return f"cuda:{self.index}"

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        dt = self.dtype(dtype) if dtype is not None else None
        with self.device:
            return self._cp.asarray(a, dtype=dt)

    def to_numpy(self, a: Any) -> np.ndarray:
        return self._cp.asnumpy(a)

    def synchronize(self) -> None:
        self.device.synchronize()

    def gpu_name(self) -> str:
        """The GPU's name as the driver reports it."""
        props = self._cp.cuda.runtime.getDeviceProperties(self.index)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
