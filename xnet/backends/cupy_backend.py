"""The CUDA backend: CuPy through array-api-compat. Imported only when a cuda device is asked for."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from xnet.backends.base import Backend, BackendUnavailable
from xnet.backends.rng import Rng

INSTALL_HINT = 'pip install "xnet[cuda12]" (or "xnet[cuda13]" for CUDA 13)'
# The cupy-cudaXXx wheels load NVRTC, cuBLAS and cuRAND from a CUDA Toolkit, installed locally or
# from PyPI through CuPy's [ctk] extra (https://docs.cupy.dev/en/stable/install.html).
TOOLKIT_HINT = 'install the CUDA Toolkit, or its libraries from PyPI: pip install "cupy-cuda13x[ctk]" (CUDA 13)'


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


def check_toolkit(cupy: Any) -> None:
    """One cuRAND draw, one compiled kernel and one cuBLAS product on the current device.

    CuPy loads NVRTC, cuRAND and cuBLAS on first use, so an install missing one of them passes
    `import_cupy` and would fail with a traceback in the first layer or training step instead.
    """
    try:
        x = cupy.random.RandomState(np.uint64(0)).random_sample((4,), dtype=np.float32)  # cuRAND, NVRTC
        float((x * 2.0) @ x)  # cuBLAS, and a copy back to the host
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0]  # compiler errors run over many lines
        raise BackendUnavailable(
            f"CuPy sees a GPU but cannot run on it ({e.__class__.__name__}: {first}); {TOOLKIT_HINT}"
        ) from e


class CupyRng(Rng):
    """cuRAND's Philox generator, keyed for each draw by (seed, number of draws since `seed()`).

    cuRAND's state cannot be exported, so the state is the seed and the draw count: restoring
    them continues the stream exactly, as HostRng does. Philox is reseeded cheaply (its state is
    a key and a counter; cuRAND's default XORWOW sets its state up again for every new seed).
    """

    def __init__(self, cupy: Any, backend: CupyBackend, seed: int | tuple[int, ...]):
        self._backend = backend
        philox = cupy.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10
        self._gen = cupy.random.RandomState(np.uint64(0), method=philox)  # reseeded before each draw
        self.seed(seed)

    def seed(self, seed: int | tuple[int, ...]) -> None:
        self._seed = [int(s) for s in seed] if isinstance(seed, (tuple, list)) else [int(seed)]
        self._draws = 0

    def _next(self) -> Any:
        """The generator, keyed for the next draw."""
        key = np.random.SeedSequence(self._seed, spawn_key=(self._draws,)).generate_state(1, np.uint64)[0]
        self._draws += 1
        # a NumPy uint64, not an int: CuPy 13.2 with NumPy 2 refuses int seeds (cupy/cupy#8392)
        self._gen.seed(np.uint64(key))
        return self._gen

    def _dtypes(self, dtype: Any) -> tuple[np.dtype, np.dtype]:
        """(dtype to draw in, dtype to return; float64 when None, as HostRng): cuRAND draws floats only."""
        out = np.dtype(self._backend.dtype(dtype if dtype is not None else "float64"))
        return (out if out in (np.float32, np.float64) else np.dtype(np.float64)), out

    def normal(self, shape, mean=0.0, std=1.0, dtype=None):
        draw, out = self._dtypes(dtype)
        return self._next().normal(mean, std, shape, dtype=draw).astype(out, copy=False)

    def uniform(self, shape, low=0.0, high=1.0, dtype=None):
        draw, out = self._dtypes(dtype)
        return self._next().uniform(low, high, shape, dtype=draw).astype(out, copy=False)

    def bernoulli(self, shape, p, dtype=None):
        mask = self._next().random_sample(shape, dtype=np.float32) < p
        return mask.astype(self._backend.dtype(dtype or "float32"), copy=False)

    def permutation(self, n):
        return self._next().permutation(n).astype(np.int64, copy=False)

    def integers(self, low, high, shape):
        return self._next().randint(low, high, shape, dtype=np.int64)

    def state_dict(self):
        return {"seed": list(self._seed), "draws": self._draws}

    def load_state_dict(self, state):
        if "seed" in state:
            self.seed(tuple(state["seed"]))
            self._draws = int(state.get("draws", 0))
            return
        # a HostRng state (a CPU run resumed on the GPU): its stream cannot be continued here, so
        # continue with a stream that this state determines
        text = json.dumps(state, sort_keys=True, default=str)
        self.seed(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little"))


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
        # array-api-compat ignores device= for CuPy (its _check_device only checks NumPy's and
        # Dask's), so arrays go to the current device: make it this one (for this thread)
        self.device.use()
        check_toolkit(cupy)
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
