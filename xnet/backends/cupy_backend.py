"""The CUDA backend: CuPy through array-api-compat. Imported only when a cuda device is asked for."""

from __future__ import annotations

from typing import Any

import numpy as np

from xnet.backends import cuda_nn_kernels, cuda_optim_kernels, cuda_philox, dlpack, philox
from xnet.backends.base import Backend, BackendUnavailable
from xnet.backends.fast_paths import fits
from xnet.backends.rng import Rng, Stream

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
        self._kernel_ok("philox")  # now, so that a broken kernel warns when the backend is made
        self.rng = Rng(self, seed)
        self.remember()

    @property
    def device_name(self) -> str:
        return f"cuda:{self.index}"

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        dt = self.dtype(dtype) if dtype is not None else None
        with self.device:
            if dlpack.foreign(a, self._cp.ndarray) and a.__dlpack_device__()[0] == dlpack.CUDA:
                a = dlpack.take(self._cp.from_dlpack, a)  # a GPU tensor of another library: shared
            return self._cp.asarray(a, dtype=dt)

    def to_numpy(self, a: Any) -> np.ndarray:
        return self._cp.asnumpy(a)

    def owns(self, a: Any) -> bool:
        return isinstance(a, self._cp.ndarray) and getattr(a.device, "id", self.index) == self.index

    def random_words(self, key: philox.Key, epoch: int, start: int, n: int) -> Any:
        # one kernel launch per draw; the reference would launch hundreds of small integer kernels
        if not self._kernel_ok("philox"):
            return super().random_words(key, epoch, start, n)
        with self.device:
            return cuda_philox.words(self._cp, key, epoch, start, n)

    def fused_dropout(self, x: Any, stream: Stream, keep: float, scale: float) -> tuple[Any, Any] | None:
        # one launch instead of the reference's six (words, shift, compare, cast, scale, product)
        if not (cuda_nn_kernels.fusable(self._cp, x) and self._kernel_ok("philox") and self._kernel_ok("dropout")):
            return None
        with self.device:
            return cuda_nn_kernels.dropout(self._cp, x, stream, keep, scale)

    def fused_softmax_cross_entropy(
        self, z: Any, target: Any, smoothing: float, scale: float
    ) -> tuple[Any, Any] | None:
        # one launch for the row terms and the gradient instead of about a dozen
        if not self._kernel_ok("softmax_cross_entropy"):
            return None
        with self.device:
            return cuda_nn_kernels.softmax_cross_entropy(self._cp, z, target, smoothing, scale)

    # -- the fused optimizer updates: one launch of cuda_optim_kernels.OPTIMIZER_KERNELS[name] each

    def optimizer_kernel(
        self, name: str, arrays: tuple[Any, ...], scalars: dict[str, Any], cache: dict | None = None
    ) -> bool:
        """Kernel `name` launched on `arrays` with `scalars` (its in_params by name), where it takes them."""
        if name not in cuda_optim_kernels.OPTIMIZER_KERNELS or not (self.owns(arrays[0]) and fits(arrays)):
            return False  # Adadelta, Adamax, NAdam, RAdam and Lion have compiled CPU kernels only
        dtype = arrays[0].dtype
        probe = lambda: cuda_optim_kernels.probe(self._cp, name, dtype)  # noqa: E731
        with self.device:
            if not self.kernel_ok((name, dtype), probe, f"{name} kernel ({dtype})"):
                return False
            cuda_optim_kernels.launch(self._cp, name, arrays, scalars)
        return True

    def _kernel_ok(self, name: str) -> bool:
        """Whether CUDA kernel `name` may run: probed against the reference at its first use (compiling
        it), and where that fails, warned once and left to the reference from then on."""
        with self.device:
            return self.kernel_ok(name, lambda: self._probe(name))

    def _probe(self, name: str) -> str | None:
        """Kernel `name` run on small inputs: None if it gives the reference's numbers, else what differed."""
        if name == "philox":
            return cuda_philox.probe(self._cp)
        if name == "dropout":
            return cuda_nn_kernels.probe_dropout(self._cp, self)
        return cuda_nn_kernels.probe_softmax_cross_entropy(self._cp)

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
