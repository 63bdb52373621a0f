"""The CUDA backend: CuPy through array-api-compat. Imported only when a cuda device is asked for."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from xnet.backends import cuda_kernels, philox
from xnet.backends.base import Backend, BackendUnavailable
from xnet.backends.rng import Rng

INSTALL_HINT = 'pip install "xnet[cuda12]" (or "xnet[cuda13]" for CUDA 13)'
# The cupy-cudaXXx wheels load NVRTC and cuBLAS from a CUDA Toolkit, installed locally or
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
    """One compiled kernel and one cuBLAS product on the current device.

    CuPy loads NVRTC and cuBLAS on first use, so an install missing one of them passes
    `import_cupy` and would fail with a traceback in the first layer or training step instead.
    """
    try:
        x = cupy.arange(4, dtype=np.float32)
        float((x * 2.0) @ x)  # a kernel compiled by NVRTC, cuBLAS, and a copy back to the host
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0]  # compiler errors run over many lines
        raise BackendUnavailable(
            f"CuPy sees a GPU but cannot run on it ({e.__class__.__name__}: {first}); {TOOLKIT_HINT}"
        ) from e


class CupyBackend(Backend):
    """CuPy on one CUDA device."""

    name = "cupy"
    launch_bound = True

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
        self._philox = self._checked_philox_kernel()
        self.rng = Rng(self, seed)

    @property
    def device_name(self) -> str:
        return f"cuda:{self.index}"

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        dt = self.dtype(dtype) if dtype is not None else None
        with self.device:
            return self._cp.asarray(a, dtype=dt)

    def to_numpy(self, a: Any) -> np.ndarray:
        return self._cp.asnumpy(a)

    def _checked_philox_kernel(self) -> Any:
        """The Philox kernel if its first words equal NumPy's, else None (the reference is used, with a warning)."""
        key, epoch, start, n = (12345, 67890), 3, 6, 10
        try:
            kernel = cuda_kernels.philox_kernel(self._cp)
            got = self._cp.asnumpy(self._launch_philox(kernel, key, epoch, start, n))
            problem = None if np.array_equal(got, philox.numpy_words(key, epoch, start, n)) else "drew other bits"
        except Exception as e:  # a compiler error: the reference still works
            problem = f"failed ({e.__class__.__name__}: {(str(e).strip().splitlines() or [''])[0]})"
        if problem is None:
            return kernel
        warnings.warn(
            f"xnet's CUDA Philox kernel {problem}; random numbers use the slower Array API reference instead",
            RuntimeWarning,
            stacklevel=3,
        )
        return None

    def _launch_philox(self, kernel: Any, key: philox.Key, epoch: int, start: int, n: int) -> Any:
        out = self._cp.empty((n,), dtype=np.uint64)
        if n:
            u64 = np.uint64  # the kernel's parameters are uint64: NumPy scalars of that type pass as they are
            kernel(u64(key[0]), u64(key[1]), u64(epoch), u64(start), out)
        return out

    def random_words(self, key: philox.Key, epoch: int, start: int, n: int) -> Any:
        # one kernel launch per draw; the reference would launch hundreds of small integer kernels
        if self._philox is None:
            return super().random_words(key, epoch, start, n)
        with self.device:
            return self._launch_philox(self._philox, key, epoch, start, n)

    def synchronize(self) -> None:
        self.device.synchronize()

    def memory_description(self) -> str:
        props = self._cp.cuda.runtime.getDeviceProperties(self.index)
        return f"{self.device_name} ({self.gpu_name()}, {props['totalGlobalMem'] / 2**30:.1f} GiB)"

    def gpu_name(self) -> str:
        """The GPU's name as the driver reports it."""
        props = self._cp.cuda.runtime.getDeviceProperties(self.index)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)

    # CuPy's default pool (cupy.cuda.MemoryPool) keeps freed blocks cached and returns them to the
    # device only on free_all_blocks(), so total_bytes() after a workload is the most the pool held
    # since the last reset (split blocks still in use stay; docs.cupy.dev, cupy.cuda.MemoryPool).
    def memory_pool_reset(self) -> None:
        """Return the pool's cached (unused) blocks to the device; blocks in use stay."""
        self._cp.get_default_memory_pool().free_all_blocks()

    def memory_pool_bytes(self) -> int | None:
        """Bytes CuPy's default memory pool holds on the device, in use and cached."""
        return int(self._cp.get_default_memory_pool().total_bytes())
