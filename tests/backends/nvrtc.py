"""NVRTC on a machine without a GPU: the CUDA source CuPy would generate for a launch, compiled as CuPy would.

CuPy lays an ElementwiseKernel launch out on the host (cupy/_core/_kernel.pyx: __call__ binds the
placeholders with `_decide_params_type`, describes every argument with an `_ArgInfo`, and
`_get_elementwise_kernel_code` writes the kernel), then compiles it through core.compile_with_cache,
which prepends `#include`s of `_cupy_header_list` and adds CuPy's include options
(`assemble_cupy_compiler_options`), then `-ftz=true`, `-arch=sm_XX` and
`--device-as-default-execution-space` (cupy/cuda/compiler.py). All of that but the last step runs
without a driver; `compile_using_nvrtc` asks the device for its architecture, so the options are
assembled here and libnvrtc (the nvidia-cuda-nvrtc wheel, or a CUDA Toolkit, found by
cuda.pathfinder, a CuPy dependency) is called through ctypes.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

# cupy/_core/_kernel.pxd: enum _ArgKind
ARG_NDARRAY, ARG_INDEXER, ARG_SCALAR = 1, 2, 3


class Unavailable(Exception):
    """CuPy or libnvrtc is missing here: the message is the one-line reason to skip."""


@functools.cache
def _library() -> tuple[Any, ctypes.CDLL]:
    """(cupy, libnvrtc) or Unavailable saying which is missing."""
    try:
        import cupy
        from cupy._core import _kernel, core  # noqa: F401  (CuPy's code generation, checked here once)
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise Unavailable(f"CuPy does not import ({e.__class__.__name__}: {first}); it is in xnet's dev extra") from e
    try:
        from cuda import pathfinder

        lib = ctypes.CDLL(pathfinder.load_nvidia_dynamic_lib("nvrtc").abs_path)
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise Unavailable(f"libnvrtc not found ({e.__class__.__name__}: {first}); pip install nvidia-cuda-nvrtc") from e
    lib.nvrtcGetErrorString.restype = ctypes.c_char_p
    return cupy, lib


def cupy_module() -> Any:
    """The real `cupy` module (imported without a GPU); Unavailable when CuPy or libnvrtc is missing."""
    return _library()[0]


def version() -> str:
    """NVRTC's version, 'major.minor'."""
    lib = _library()[1]
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    return f"{major.value}.{minor.value}"


@dataclass(frozen=True)
class Arg:
    """One argument of a launch as xnet passes it: an array (dtype, ndim) or a scalar (its Python/NumPy value)."""

    array: bool
    dtype: np.dtype | None = None
    ndim: int = 0


def elementwise_source(kernel: Any, args: tuple[Arg, ...], index_32_bits: bool) -> str:
    """The CUDA source CuPy compiles for `kernel(*args)` (a cupy.ElementwiseKernel, every output passed).

    As ElementwiseKernel.__call__ does: placeholders bound from the arrays' dtypes, each scalar
    stored into its parameter's type, C-contiguous non-raw arrays reduced to one dimension (the
    caller passes only C-contiguous ones), and every array's and the indexer's index arithmetic in
    32 or 64 bits (CuPy picks 64 for arrays of 2**31 elements or more)."""
    cupy = cupy_module()
    from cupy._core import _carray, _kernel, _scalar, core

    nin = len(kernel.in_params)
    ins = tuple(a.dtype if a.array else None for a in args[:nin])
    outs = tuple(a.dtype for a in args[nin:])
    in_types, _, type_map = kernel._decide_params_type(ins, outs)
    non_raw = [a.ndim for p, a in zip(kernel.params, args, strict=False) if a.array and not p.raw]
    ndim = max(non_raw, default=0)
    loop_ndim = min(ndim, 1)  # _reduce_dims: C-contiguous arrays of one shape become one flat axis
    infos = []
    for i, (p, a) in enumerate(zip(kernel.params, args, strict=False)):
        if not a.array:
            infos.append(_kernel._ArgInfo(ARG_SCALAR, _scalar.CScalar, np.dtype(in_types[i]), 0, True, True))
        else:
            dims = a.ndim if p.raw else loop_ndim
            infos.append(_kernel._ArgInfo(ARG_NDARRAY, cupy.ndarray, a.dtype, dims, True, index_32_bits))
    infos.append(_kernel._ArgInfo(ARG_INDEXER, _carray.Indexer, None, loop_ndim, True, index_32_bits))
    code = _kernel._get_elementwise_kernel_code(
        tuple(infos), type_map, kernel.params, kernel.operation, kernel.name, kernel.preamble, **kernel.kwargs
    )
    return "".join(f"#include <{h}>\n" for h in core._cupy_header_list) + code


def options(kernel_options: tuple[str, ...], arch: str) -> tuple[str, ...]:
    """The NVRTC options CuPy passes for a kernel built with `kernel_options`, for `arch` ('sm_90')."""
    from cupy._core import core

    assembled = core.assemble_cupy_compiler_options(tuple(kernel_options))
    return (*assembled, "-ftz=true", f"-arch={arch}", "--device-as-default-execution-space")


@dataclass(frozen=True)
class Result:
    """What NVRTC said: ok, its log, and the PTX (for an -arch=compute_XX build) or '' (for sm_XX)."""

    ok: bool
    log: str
    ptx: str = ""


def compile_source(source: str, opts: tuple[str, ...], name: str = "kern.cu") -> Result:
    """Compile `source` with libnvrtc and `opts`; NVRTC's log whether or not it compiled."""
    lib = _library()[1]
    prog = ctypes.c_void_p()
    _check(lib, lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None))
    try:
        argv = (ctypes.c_char_p * len(opts))(*(o.encode() for o in opts))
        status = lib.nvrtcCompileProgram(prog, len(opts), argv)
        size = ctypes.c_size_t()
        _check(lib, lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size)))
        log = ctypes.create_string_buffer(size.value)
        _check(lib, lib.nvrtcGetProgramLog(prog, log))
        text = log.value.decode(errors="replace").strip()
        if status != 0:
            return Result(False, text or lib.nvrtcGetErrorString(status).decode())
        ptx = ""
        if any(o.startswith("-arch=compute_") for o in opts):
            _check(lib, lib.nvrtcGetPTXSize(prog, ctypes.byref(size)))
            buf = ctypes.create_string_buffer(size.value)
            _check(lib, lib.nvrtcGetPTX(prog, buf))
            ptx = buf.value.decode()
        return Result(True, text, ptx)
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def _check(lib: ctypes.CDLL, status: int) -> None:
    if status != 0:
        raise RuntimeError(f"NVRTC call failed: {lib.nvrtcGetErrorString(status).decode()}")
