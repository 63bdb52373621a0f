"""A `cupy` module on NumPy for the CPU-only tests of the CUDA backend and its kernels.

It implements only the CuPy API whose behaviour was checked against CuPy's source and docs
(ElementwiseKernel's arguments, Device as a context manager), so tests catch calls CuPy would
refuse before a GPU ever runs them. Its ElementwiseKernel is cuda_on_host.py's, which compiles
every kernel's CUDA source with the host's C++ compiler, so the fake GPU runs xnet's real kernels
(Philox, optimizers, dropout, softmax cross-entropy).
"""

from __future__ import annotations

import types

import cuda_on_host
import numpy as np
import pytest
from cuda_on_host import compiler

needs_compiler = pytest.mark.skipif(compiler() is None, reason="no C++ compiler to run the CUDA source on the host")


def make_fake_cupy(count: int = 1, broken: Exception | None = None) -> types.ModuleType:
    """A `cupy` module on NumPy: `count` GPUs; `broken` is raised by the first kernel (toolkit check).

    Its log names the kernels built ("kernels") and launched ("by_name"), and counts the launches."""
    cupy = types.ModuleType("cupy")
    cupy.log = {"kernels": [], "launches": 0, "by_name": [], "current": 0, "entered": 0}
    log = cupy.log

    class Device:
        def __init__(self, device=None):
            self.id = log["current"] if device is None else int(device)

        def use(self):
            log["current"] = self.id

        def synchronize(self):
            pass

        def __enter__(self):
            self._previous, log["current"] = log["current"], self.id
            log["entered"] += 1
            return self

        def __exit__(self, *args):
            log["current"] = self._previous

    class ElementwiseKernel(cuda_on_host.ElementwiseKernel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            log["kernels"].append(self.name)

        def __call__(self, *args):
            log["launches"] += 1
            log["by_name"].append(self.name)
            return super().__call__(*args)

    def arange(n, dtype=None):
        if broken is not None:
            raise broken
        return np.arange(n, dtype=dtype)

    def get_device_count():
        if isinstance(count, Exception):
            raise count
        return count

    runtime = types.SimpleNamespace(
        getDeviceCount=get_device_count,
        getDeviceProperties=lambda i: {"name": b"Fake GPU", "totalGlobalMem": 2**34},
    )

    class MemoryPool:
        # cupy/cuda/memory.pyx: freed blocks stay cached until free_all_blocks(stream=None);
        # total_bytes() = used_bytes() + free_bytes()
        def __init__(self):
            self.used, self.cached = 0, 0

        def free_all_blocks(self, stream=None):
            self.cached = 0

        def total_bytes(self):
            return self.used + self.cached

    pool = MemoryPool()
    cupy.get_default_memory_pool = lambda: pool
    cupy.cuda = types.SimpleNamespace(runtime=runtime, Device=Device)
    cupy.ElementwiseKernel = ElementwiseKernel
    cupy.ndarray = np.ndarray  # the fake's arrays are NumPy's
    cupy.arange = arange
    cupy.empty = lambda shape, dtype=float: np.empty(shape, dtype=dtype)
    cupy.zeros = lambda shape, dtype=float: np.zeros(shape, dtype=dtype)
    cupy.asarray = lambda a, dtype=None: np.asarray(a, dtype=dtype)
    cupy.asnumpy = np.asarray
    return cupy


def device_free_numpy() -> types.ModuleType:
    """NumPy as array_api_compat.cupy: creation functions ignore device=, as array-api-compat's CuPy ones do."""
    xp = types.ModuleType("fake_array_api_compat_cupy")
    xp.__dict__.update(np.__dict__)
    for name in ("arange", "asarray", "empty", "full", "ones", "zeros"):
        xp.__dict__[name] = lambda *a, _f=getattr(np, name), device=None, **k: _f(*a, **k)
    return xp
