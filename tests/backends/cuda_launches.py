"""Every CUDA kernel launch xnet can make, found by running xnet's launchers on a recording `cupy`.

`recorded_launches()` calls each launcher of the kernel modules (xnet/backends/cuda_*.py) with
each dtype it accepts, on a `cupy` stand-in whose ElementwiseKernel is CuPy's own (its constructor
runs without a GPU) and whose launches are only written down: the kernel object exactly as
kernel_check.elementwise built it (source, preamble, options) and the dtype and ndim of each
argument. Nothing is computed. `defined_kernels()` reads the kernel specs the modules define (a
dict with in_params, out_params, operation and name, or a dict of them), found by module, so a
kernel added later is seen even if no launcher here reaches it: the NVRTC test then fails, naming it.
Optimizer kernels are launched from cuda_optim_kernels.OPTIMIZER_KERNELS, so a new entry there is
compiled without a change here; a new launcher in cuda_nn_kernels.py or a new module needs its call
added to `_launch_all` below.
"""

from __future__ import annotations

import importlib
import pkgutil
import types
from dataclasses import dataclass
from typing import Any

import numpy as np
from nvrtc import Arg, cupy_module

import xnet.backends
from xnet.backends import cuda_nn_kernels, cuda_optim_kernels, cuda_philox, get_backend, kernel_check
from xnet.backends.rng import Stream

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass(frozen=True)
class Launch:
    """One kernel as built (a cupy.ElementwiseKernel, or a _RawKernel) and the arguments of one launch."""

    kernel: Any
    args: tuple[Arg, ...]

    @property
    def name(self) -> str:
        return self.kernel.name

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(self.kernel.kwargs.get("options", ())) if hasattr(self.kernel, "kwargs") else self.kernel.options

    def describe(self) -> str:
        """'xnet_adam(float32, ...)': the kernel and its arrays' dtypes, for test ids."""
        dts = [str(a.dtype) for a in self.args if a.array]
        return f"{self.name}({','.join(dict.fromkeys(dts))})"


@dataclass(frozen=True)
class _RawKernel:
    """What cupy.RawKernel(code, name, options) was given: compiled as its source stands (no CuPy headers)."""

    code: str
    name: str
    options: tuple[str, ...] = ()


def kernel_modules() -> list[types.ModuleType]:
    """Every module xnet/backends/cuda_*.py: where xnet's CUDA sources live."""
    names = [m.name for m in pkgutil.iter_modules(xnet.backends.__path__) if m.name.startswith("cuda_")]
    return [importlib.import_module(f"xnet.backends.{n}") for n in sorted(names)]


def _is_spec(value: Any) -> bool:
    return isinstance(value, dict) and {"in_params", "out_params", "operation", "name"} <= value.keys()


def defined_kernels() -> dict[str, str]:
    """Kernel name -> the module defining its spec, for every ElementwiseKernel spec in kernel_modules()."""
    found: dict[str, str] = {}
    for module in kernel_modules():
        for value in vars(module).values():
            specs = [value] if _is_spec(value) else list(value.values()) if isinstance(value, dict) else []
            for spec in filter(_is_spec, specs):
                found.setdefault(spec["name"], module.__name__)
    return found


def _recording_cupy(launches: list[Launch]) -> types.ModuleType:
    """A `cupy` whose arrays are NumPy's and whose kernels record their launches instead of running."""
    real = cupy_module()  # the real CuPy: its ElementwiseKernel is built without a GPU

    class Recorded:
        def __init__(self, kernel: Any):
            self.kernel = kernel

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            described = tuple(Arg(True, a.dtype, a.ndim) if isinstance(a, np.ndarray) else Arg(False) for a in args)
            launches.append(Launch(self.kernel, () if isinstance(self.kernel, _RawKernel) else described))

    cupy = types.ModuleType("cupy")
    cupy.ElementwiseKernel = lambda *a, **k: Recorded(real.ElementwiseKernel(*a, **k))
    cupy.RawKernel = lambda code, name, options=(), **k: Recorded(_RawKernel(code, name, tuple(options)))
    cupy.ndarray = np.ndarray
    cupy.empty = lambda shape, dtype=float: np.zeros(shape, dtype=dtype)
    cupy.zeros = lambda shape, dtype=float: np.zeros(shape, dtype=dtype)
    cupy.asarray = lambda a, dtype=None: np.asarray(a, dtype=dtype)
    cupy.asnumpy = np.asarray
    return cupy


def _launch_all(cupy: types.ModuleType) -> None:
    """Call every launcher with each dtype (and label dtype) it accepts, on arrays of 2 dimensions where allowed."""
    cuda_philox.words(cupy, (1, 2), 0, 0, 8)
    host = get_backend("cpu", seed=0)
    for dtype in FLOATS:
        x = np.zeros((4, 3), dtype=dtype)
        cuda_nn_kernels.dropout(cupy, x, Stream(host, 0, "dropout"), 0.5, 2.0)
        for labels in cuda_nn_kernels.LABELS:
            cuda_nn_kernels.softmax_cross_entropy(cupy, x, np.zeros((4,), dtype=labels), 0.1, 0.25)
        cuda_nn_kernels.softmax_cross_entropy(cupy, x, np.zeros((4, 3), dtype=dtype), 0.1, 0.25)
        for name, spec in cuda_optim_kernels.OPTIMIZER_KERNELS.items():
            # as cuda_optim_kernels.launch calls it: the scalars (Python numbers), then the arrays
            scalars = [0] * len(spec["in_params"].split(","))
            arrays = [np.zeros((4, 3), dtype=dtype) for _ in spec["out_params"].split(",")]
            cuda_optim_kernels.kernel(cupy, name)(*scalars, *arrays)


def recorded_launches() -> list[Launch]:
    """Each distinct launch xnet's launchers make (kernel x argument dtypes and ndims), in order."""
    launches: list[Launch] = []
    saved = dict(kernel_check._kernels)
    kernel_check._kernels.clear()  # the launchers build their kernels afresh on the recording cupy
    try:
        _launch_all(_recording_cupy(launches))
    finally:
        kernel_check._kernels.clear()
        kernel_check._kernels.update(saved)
    unique: dict[tuple, Launch] = {}
    for launch in launches:
        unique.setdefault((launch.name, launch.args), launch)
    return list(unique.values())


# a kernel that may keep NVRTC's multiply-add contraction says why in its CUDA source, after this
FMAD_EXCUSE = "--fmad=false not passed:"


def fmad_problem(launch: Launch) -> str | None:
    """None if the kernel is built with --fmad=false or its source says why not (FMAD_EXCUSE), else the problem.

    Without the flag NVRTC contracts a * b + c into one fused multiply-add, rounding once where the
    Array API reference (one operation per launch) rounds twice: the numbers then differ in the last bits."""
    if "--fmad=false" in launch.options:
        return None
    k = launch.kernel
    source = k.code if isinstance(k, _RawKernel) else f"{k.preamble}\n{k.operation}"
    if FMAD_EXCUSE in source:
        return None
    return f"{launch.name} is built with options {launch.options}: pass --fmad=false or say why not ({FMAD_EXCUSE!r})"
