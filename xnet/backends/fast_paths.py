"""Fused optimizer kernels behind the seam: `kernel_for(name, *arrays)` gives a one-launch update or None.

Optimizers ask here, with the arrays they are about to update, because they see parameters and
arrays, never the backend (layers and losses hold theirs and ask it: Backend.fused_dropout and
friends in base.py). A CuPy array set that a kernel can take gets a launcher of the fused CUDA
kernel (cuda_optim_kernels.OPTIMIZER_KERNELS), a NumPy array set the compiled CPU kernel of the
same arguments (cpu_kernels/optim.py, Numba, unless XNET_CPU_KERNELS=0), anything else None, and
the caller runs its Array API body, which stays the reference. A kernel takes only what it
computes exactly as that body does: arrays of one shape and one dtype, float32 or float64, each
C-contiguous. A kernel is launched
once on scratch arrays at its first use for a dtype; if CuPy cannot compile it, a warning says so
and the reference body runs from then on (kernel_check.py, as for the backend's kernels).

Written from CuPy's documentation and source; compared with the reference on the host by
compiling the CUDA C with g++ (tests/backends/test_fast_paths.py), not yet run on a GPU.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from xnet.backends import cuda_optim_kernels, kernel_check
from xnet.backends.base import Array
from xnet.backends.cpu_kernels import loader
from xnet.backends.cuda_optim_kernels import COUPLED_DECAY, DECOUPLED_DECAY, NO_DECAY

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# (kernel name, dtype) -> passed its first-use probe; kept here because optimizers have no backend to keep it
_checked: dict[tuple[str, Any], bool] = {}


def _device_library(a: Array) -> ModuleType | None:
    """The `cupy` module when `a` is a CuPy array, else None (NumPy first: the CPU's cheap exit)."""
    if isinstance(a, np.ndarray):
        return None
    if not array_api_compat.is_cupy_array(a):
        return None  # array-api-strict, or another library without xnet kernels
    return sys.modules["cupy"]  # a CuPy array exists, so cupy is imported


def _fits(arrays: tuple[Array, ...]) -> bool:
    """Whether the kernel computes these arrays as the reference does: one shape, one float dtype, C order."""
    first = arrays[0]
    if first.dtype not in FLOATS:
        return False
    for a in arrays:
        if type(a) is not type(first) or a.dtype != first.dtype or a.shape != first.shape:
            return False
        if not a.flags.c_contiguous:
            return False
    return True


def kernel_for(name: str, *arrays: Array) -> Callable[..., None] | None:
    """fn(*scalars) updating `arrays` (each of one shape) in place in one launch of kernel `name`, or None.

    The scalars are the kernel's in_params in cuda_optim_kernels.OPTIMIZER_KERNELS[name] (a `decay`
    argument is NO_DECAY, COUPLED_DECAY or DECOUPLED_DECAY); the arrays are its out_params, in order.
    """
    cupy = _device_library(arrays[0])
    if cupy is None:
        if not isinstance(arrays[0], np.ndarray):
            return None
        cpu = loader.kernels()  # the NumPy backend's compiled kernels (cpu_kernels/, Numba)
        return None if cpu is None else cpu.optimizer(name, arrays)
    if not _fits(arrays):
        return None
    key = (name, arrays[0].dtype)
    if key not in _checked:
        _checked[key] = kernel_check.first_use_ok(
            f"{name} kernel ({key[1]})", lambda: cuda_optim_kernels.probe(cupy, name, key[1])
        )
    if not _checked[key]:
        return None
    kernel = cuda_optim_kernels.kernel(cupy, name)

    def launch(*scalars: Any) -> None:
        kernel(*scalars, *arrays)

    return launch


__all__ = ["COUPLED_DECAY", "DECOUPLED_DECAY", "NO_DECAY", "kernel_for"]
