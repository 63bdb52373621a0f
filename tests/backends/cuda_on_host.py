"""cupy.ElementwiseKernel on the host: the CPU-only check of xnet's CUDA kernels, and the fake GPU's kernels.

`ElementwiseKernel` takes what CuPy's takes and, when called, lays the kernel out as CuPy would for
these arguments (cupy/_core/_kernel.pyx: _decide_params_type_core, _get_kernel_params; _scalar.pyx),
compiles it into a shared library with the host's C++ compiler, one per binding of its placeholders
and pattern of array and scalar arguments, and runs it on NumPy arrays. What it copies from CuPy:
- a one-letter type such as T is a placeholder bound by the dtypes of the output arrays, then of the
  input arrays, raw ones included (a conflict is "Type is mismatched"), and declared at file scope
  with `typedef float T;` before the preamble; a named type (float32, uint64, ...) must be the
  array's dtype;
- a non-raw array's element is `const T &x = _raw_x[i]` for an input and `T &y = _raw_y[i]` for an
  output, so `y += x` updates the output array in place;
- a `raw` array is indexed by hand (`z[k]`, the C-order element k), `const` for an input;
- a scalar is passed by value, `const`, its Python or NumPy value stored into the parameter's type
  as NumPy assignment does (CScalar.apply_dtype: a float64 rounds to float32); scalars bind nothing;
- `i` is the loop index, over the elements of the non-raw arrays; the outputs are returned (one, or
  a tuple).
It models only what xnet's kernels use: every argument given (outputs included), the non-raw arrays
of one shape, every array C-contiguous (CuPy broadcasts and strides; this does not), the types in
C_TYPES and the options in OPTIONS. Anything else is refused, not guessed at. The CUDA-only names
xnet's kernels use get host stand-ins: `__device__` is dropped, `__umul64hi` is a 128-bit product,
`sqrt` is overloaded for float as CUDA's math API is. Floating-point contraction is always off
(-ffp-contract=off): a kernel's operations round one by one, as NumPy's array operations do and as
NVRTC does with --fmad=false; without that option nvcc may fuse a multiply and an add into one FMA.
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

# dtype name -> (C type as CuPy names it, ctypes type of a scalar passed by value)
C_TYPES = {
    "bool": ("bool", ctypes.c_bool),
    "int32": ("int", ctypes.c_int32),
    "int64": ("long long", ctypes.c_int64),
    "uint64": ("unsigned long long", ctypes.c_uint64),
    "float32": ("float", ctypes.c_float),
    "float64": ("double", ctypes.c_double),
}
HOST_SHIMS = r"""
#include <cmath>
using std::sqrt;  // CUDA's math API overloads sqrt for float and double, as <cmath> does
#define __device__
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
"""
OPTIONS = {"--fmad=false"}  # what the host build honours: it never contracts (-ffp-contract=off)
_BUILD = Path(tempfile.gettempdir()) / "xnet-cuda-on-host"


def compiler() -> str | None:
    """The host's C++ compiler, or None."""
    return shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


class Param:
    """One parameter of a kernel: its type (a dtype name or a placeholder letter), name, raw or not, input or output."""

    def __init__(self, spec: str, output: bool):
        words = spec.split()
        self.raw = words[0] == "raw"
        words = words[1:] if self.raw else words
        if len(words) != 2:
            raise NotImplementedError(f"host kernel: cannot read parameter {spec!r}")
        self.type, self.name = words
        self.output = output
        if not (len(self.type) == 1 and self.type.isupper()) and self.type not in C_TYPES:
            raise NotImplementedError(f"host kernel: type {self.type!r} is not supported")


class ElementwiseKernel:
    """cupy.ElementwiseKernel(in_params, out_params, operation, name, reduce_dims, preamble, options) on the host."""

    def __init__(
        self,
        in_params: str,
        out_params: str,
        operation: str,
        name: str = "kernel",
        reduce_dims: bool = True,  # C-contiguous arrays of one shape: reducing dims changes nothing here
        preamble: str = "",
        *,
        options: tuple[str, ...] = (),
    ):
        self.ins = [Param(p, output=False) for p in in_params.split(",") if p.strip()]
        self.outs = [Param(p, output=True) for p in out_params.split(",") if p.strip()]
        self.operation, self.name, self.preamble = operation, name, preamble
        if "_ind" in operation:
            raise NotImplementedError("host kernel: _ind is not modelled")
        unknown = set(options) - OPTIONS
        if unknown:
            raise NotImplementedError(f"host kernel: options {sorted(unknown)} are not modelled")
        self._libs: dict[tuple, Any] = {}  # one library per placeholder binding and array/scalar pattern

    def __call__(self, *args: Any) -> Any:
        params = self.ins + self.outs
        if len(args) != len(params):
            raise NotImplementedError(f"{self.name}: pass every input and output ({len(params)} arguments)")
        types = self._bind(args)
        shapes = {a.shape for p, a in zip(params, args, strict=True) if isinstance(a, np.ndarray) and not p.raw}
        if len(shapes) != 1:
            raise NotImplementedError(f"{self.name}: non-raw arrays of one shape only (got {sorted(shapes)})")
        values = []
        for p, a in zip(params, args, strict=True):
            if isinstance(a, np.ndarray):
                if not a.flags.c_contiguous:
                    raise NotImplementedError(f"{self.name}: {p.name} is not C-contiguous")
                values.append(a.ctypes.data)
            elif p.output or p.raw:
                raise TypeError(f"{self.name}: {p.name} must be an array, got {type(a).__name__}")
            elif p.type not in types and p.type not in C_TYPES:
                raise TypeError(f"{self.name}: placeholder {p.type} of {p.name} is bound by no array")
            else:
                cell = np.empty((), dtype=types.get(p.type, p.type))
                cell[()] = a  # NumPy assignment, as CuPy's CScalar stores a scalar into its parameter type
                values.append(cell.item())
        key = (tuple(sorted(types.items())), tuple(isinstance(a, np.ndarray) for a in args))
        if key not in self._libs:
            self._libs[key] = self._build(types, key[1])
        self._libs[key](int(np.prod(shapes.pop())), *values)
        outs = args[len(self.ins) :]
        return outs[0] if len(outs) == 1 else outs

    def _bind(self, args: tuple[Any, ...]) -> dict[str, str]:
        """Placeholder -> dtype name from the array arguments, outputs first; TypeError where CuPy raises one."""
        types: dict[str, str] = {}
        pairs = list(zip(self.ins, args[: len(self.ins)], strict=True))
        for p, a in list(zip(self.outs, args[len(self.ins) :], strict=True)) + pairs:
            if not isinstance(a, np.ndarray):
                continue
            want = p.type if p.type in C_TYPES else types.setdefault(p.type, a.dtype.name)
            if a.dtype.name != want:
                raise TypeError(f"Type is mismatched. {p.name} {a.dtype.name} {want}")
        return types

    def _build(self, types: dict[str, str], arrays: tuple[bool, ...]) -> Any:
        """The compiled loop for this binding: run(n, *arguments as pointers or values)."""
        decls, elements, argtypes = [], [], [ctypes.c_longlong]
        for p, is_array in zip(self.ins + self.outs, arrays, strict=True):
            c = p.type if p.type in types else C_TYPES[p.type][0]  # a placeholder stays its typedef's name
            const = "" if p.output else "const "
            if not is_array:
                decls.append(f"const {c} {p.name}")
                argtypes.append(C_TYPES[types.get(p.type, p.type)][1])
                continue
            argtypes.append(ctypes.c_void_p)
            if p.raw:
                decls.append(f"{const}{c}* {p.name}")
            else:
                decls.append(f"{const}{c}* _raw_{p.name}")
                elements.append(f"{const}{c} &{p.name} = _raw_{p.name}[i];")
        typedefs = "".join(f"typedef {C_TYPES[d][0]} {t};\n" for t, d in sorted(types.items()))
        body = "\n        ".join(elements)
        source = (
            f"{HOST_SHIMS}\n{typedefs}{self.preamble}\n"
            f'extern "C" void run(long long n, {", ".join(decls)}) {{\n'
            f"    for (long long i = 0; i < n; ++i) {{\n        {body}\n        {self.operation}\n    }}\n}}\n"
        )
        lib = _compile(source)
        lib.run.restype = None
        lib.run.argtypes = argtypes
        return lib.run


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
