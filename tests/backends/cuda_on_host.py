"""Run an elementwise CUDA kernel's C source on the host: the CPU-only check of xnet's CUDA kernels.

`host_elementwise` compiles a kernel as CuPy's ElementwiseKernel would see it into a shared library
with the host's C++ compiler, with `__device__` removed and `__umul64hi` computed through a 128-bit
product. What it copies from CuPy (cupy/_core/_kernel.pyx, _scalar.pyx):
- a one-letter type such as T is a placeholder bound by the dtypes of the output arrays, then of the
  input arrays (a conflict is "Type is mismatched"), and declared with `typedef float T;`;
- an array argument's element is `const T &x = _raw_x[i]` for an input and `T &y = _raw_y[i]` for
  an output, so an operation such as `y += x` updates the output array in place;
- a scalar argument is passed by value, its Python or NumPy value stored into the parameter's type
  as NumPy assignment does (CuPy's CScalar.apply_dtype: PyArray_Pack; a float64 rounds to float32);
- `i` is the loop index.
It supports only what xnet's kernels use: every argument given (outputs included), arrays of one
shape and C-contiguous (CuPy broadcasts and strides; this does not), the types in C_TYPES. Anything
else is refused, not guessed at. Floating-point contraction is off (-ffp-contract=off), so a
kernel's operations round one by one, as NumPy's array operations do; nvcc may fuse a multiply
and an add into one FMA on a GPU.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

# dtype name -> (C type as CuPy names it, ctypes type of a scalar passed by value)
C_TYPES = {
    "uint64": ("unsigned long long", ctypes.c_uint64),
    "int32": ("int", ctypes.c_int32),
    "float32": ("float", ctypes.c_float),
    "float64": ("double", ctypes.c_double),
    "bool": ("bool", ctypes.c_bool),
}
HOST_SHIMS = r"""
#include <cmath>
using std::sqrt;  // CUDA's math API overloads sqrt for float and double, as <cmath> does
#define __device__
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
"""
_BUILD = Path(tempfile.gettempdir()) / "xnet-cuda-on-host"


def compiler() -> str | None:
    """The host's C++ compiler, or None."""
    return shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def _params(spec: str) -> list[tuple[str, str]]:
    """'T a, uint64 b' -> [('T', 'a'), ('uint64', 'b')]: placeholders (one letter) or the types in C_TYPES."""
    out = []
    for part in spec.split(","):
        dtype, name = part.split()
        if len(dtype) != 1 and dtype not in C_TYPES:
            raise NotImplementedError(f"host_elementwise: type {dtype!r} is not supported")
        out.append((dtype, name))
    return out


def _bind(params: list[tuple[str, str]], args: tuple, types: dict[str, str]) -> None:
    """Bind placeholders to the dtypes of the array arguments; TypeError where CuPy raises one."""
    for (dtype, name), a in zip(params, args, strict=True):
        if not isinstance(a, np.ndarray):
            continue
        got = a.dtype.name
        want = types.setdefault(dtype, got) if len(dtype) == 1 else dtype
        if got != want:
            raise TypeError(f"Type is mismatched. {name} {got} {want}")


def _compile(source: str) -> ctypes.CDLL:
    """The shared library built from `source` (cached by its hash across runs)."""
    tag = hashlib.sha256(source.encode()).hexdigest()[:16]
    lib_path = _BUILD / f"kernel-{tag}.so"
    if not lib_path.exists():
        _BUILD.mkdir(parents=True, exist_ok=True)
        src = _BUILD / f"kernel-{tag}.cpp"
        src.write_text(source)
        tmp = lib_path.with_suffix(f".{tag}.tmp")
        flags = ["-O2", "-ffp-contract=off", "-shared", "-fPIC"]
        subprocess.run([compiler(), *flags, "-o", str(tmp), str(src)], check=True)
        tmp.replace(lib_path)  # atomic: a parallel test never loads a half-written library
    return ctypes.CDLL(str(lib_path))


def host_elementwise(in_params: str, out_params: str, operation: str, preamble: str = "") -> Callable[..., None]:
    """fn(*inputs, *outputs): ElementwiseKernel(in_params, out_params, operation, preamble=...) on the host."""
    ins, outs = _params(in_params), _params(out_params)
    built: dict[tuple, Callable[..., None]] = {}  # one library per bound type map and array/scalar pattern

    def build(types: dict[str, str], arrays: tuple[bool, ...]) -> Callable[..., None]:
        def ctype(dtype: str) -> str:
            return dtype if len(dtype) == 1 else C_TYPES[dtype][0]

        typedefs = "".join(f"typedef {C_TYPES[t][0]} {p};\n" for p, t in sorted(types.items()))
        args, elements, argtypes = [], [], [ctypes.c_longlong]
        for (dtype, name), is_array in zip(ins, arrays, strict=True):
            if is_array:
                args.append(f"const {ctype(dtype)}* _raw_{name}")
                elements.append(f"const {ctype(dtype)} &{name} = _raw_{name}[i];")
                argtypes.append(ctypes.c_void_p)
            else:
                args.append(f"const {ctype(dtype)} {name}")
                argtypes.append(C_TYPES[types.get(dtype, dtype)][1])
        for dtype, name in outs:
            args.append(f"{ctype(dtype)}* _raw_{name}")
            elements.append(f"{ctype(dtype)} &{name} = _raw_{name}[i];")
            argtypes.append(ctypes.c_void_p)
        body = "\n        ".join(elements)
        source = (
            f"{HOST_SHIMS}\n{typedefs}{preamble}\n"
            f'extern "C" void run(long long n, {", ".join(args)}) {{\n'
            f"    for (long long i = 0; i < n; ++i) {{\n        {body}\n        {operation}\n    }}\n}}\n"
        )
        lib = _compile(source)
        lib.run.restype = None
        lib.run.argtypes = argtypes
        return lib.run

    def run(*call_args: object) -> None:
        if len(call_args) != len(ins) + len(outs):
            raise TypeError(f"kernel takes {len(ins)} inputs and {len(outs)} outputs, got {len(call_args)} arguments")
        in_args, out_args = call_args[: len(ins)], call_args[len(ins) :]
        for (_, name), out in zip(outs, out_args, strict=True):
            if not isinstance(out, np.ndarray):
                raise TypeError(f"Output arguments type must be an array: {name} is {type(out).__name__}")
        types: dict[str, str] = {}
        _bind(outs, out_args, types)  # outputs first, as CuPy's _decide_params_type_core
        _bind(ins, in_args, types)
        arrays = [a for a in call_args if isinstance(a, np.ndarray)]
        if any(a.shape != arrays[0].shape or not a.flags.c_contiguous for a in arrays):
            raise NotImplementedError("host_elementwise: arrays of one shape, C-contiguous, only")
        values = []
        for (dtype, name), a in zip(ins, in_args, strict=True):
            if isinstance(a, np.ndarray):
                values.append(a.ctypes.data)
                continue
            if len(dtype) == 1 and dtype not in types:
                raise TypeError(f"kernel input {name}: type {dtype} is bound by no array")
            cell = np.empty((), dtype=types.get(dtype, dtype))
            cell[()] = a  # NumPy assignment, as CuPy's CScalar stores a scalar into its parameter type
            values.append(cell.item())
        key = (tuple(sorted(types.items())), tuple(isinstance(a, np.ndarray) for a in in_args))
        if key not in built:
            built[key] = build(types, key[1])
        built[key](arrays[0].size, *values, *(out.ctypes.data for out in out_args))

    return run
