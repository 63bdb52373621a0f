"""Run an ElementwiseKernel with array arguments on the host: the CPU-only check of xnet's fused CUDA kernels.

`HostElementwiseKernel` takes what `cupy.ElementwiseKernel` takes and, when called, compiles the
kernel as CuPy would lay it out for these arguments (cupy/_core/_kernel.pyx, docs.cupy.dev
"User-Defined Kernels") into a shared library with the host's C++ compiler, one per binding of
its type placeholders, and runs it on NumPy arrays:

- a one-letter type is a placeholder, bound to the dtype of the array arguments that use it;
  named types (float32, uint64, ...) must match the array's dtype (the model refuses a cast);
- non-raw arrays are read (inputs) or written (outputs) at element `i` of the loop, which runs
  over their common size; `i` is the C-order index, as CuPy's is for C-contiguous arrays;
- `raw` arrays are indexed by hand (`z[k]` for the C-order element k, a `const` one for inputs);
- scalars are cast to their parameter's type, which must hold them exactly;
- outputs are passed explicitly; all arrays are C-contiguous.

Anything else (broadcasting, strided arrays, `_ind`, omitted outputs) is refused, not guessed at.
The CUDA-only names xnet's kernels use get host stand-ins: `__device__` is dropped, `__umul64hi`
is a 128-bit product; the compiler contracts no a * b + c into a fused multiply-add, as NVRTC
with --fmad=false does not.
"""

from __future__ import annotations

import ctypes
import hashlib
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from cuda_on_host import compiler

C_TYPES = {
    "float32": ("float", ctypes.c_float),
    "float64": ("double", ctypes.c_double),
    "int32": ("int", ctypes.c_int32),
    "int64": ("long long", ctypes.c_longlong),
    "uint64": ("unsigned long long", ctypes.c_ulonglong),
}
HOST_SHIMS = r"""
#include <cmath>
#define __device__
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
"""
KNOWN_OPTIONS = {"--fmad=false"}  # what the host build honours (-ffp-contract=off)
_BUILD = Path(tempfile.gettempdir()) / "xnet-cuda-on-host"


class Param:
    """One parameter: its type (a dtype name or a placeholder letter), name, and whether it is raw."""

    def __init__(self, spec: str):
        words = spec.split()
        self.raw = words[0] == "raw"
        if self.raw:
            words = words[1:]
        if len(words) != 2:
            raise NotImplementedError(f"host kernel: cannot read parameter {spec!r}")
        self.type, self.name = words
        if not (len(self.type) == 1 and self.type.isupper()) and self.type not in C_TYPES:
            raise NotImplementedError(f"host kernel: type {self.type!r} is not supported")


def _params(spec: str) -> list[Param]:
    return [Param(part) for part in spec.split(",") if part.strip()]


class HostElementwiseKernel:
    """cupy.ElementwiseKernel(in_params, out_params, operation, name, preamble=..., options=...) on the host."""

    def __init__(
        self,
        in_params: str,
        out_params: str,
        operation: str,
        name: str = "kernel",
        reduce_dims: bool = True,
        preamble: str = "",
        options: tuple[str, ...] = (),
    ):
        self.ins, self.outs = _params(in_params), _params(out_params)
        self.operation, self.name, self.preamble = operation, name, preamble
        if "_ind" in operation:
            raise NotImplementedError("host kernel: _ind is not modelled")
        unknown = set(options) - KNOWN_OPTIONS
        if unknown:
            raise NotImplementedError(f"host kernel: options {sorted(unknown)} are not modelled")
        self._libs: dict[tuple[tuple[str, str], ...], Any] = {}

    def _bind(self, args: tuple[Any, ...]) -> dict[str, str]:
        """Placeholder -> dtype name, from the array arguments (outputs first, as CuPy decides)."""
        bound: dict[str, str] = {}
        params = list(zip(self.ins, args[: len(self.ins)], strict=True))
        outs = list(zip(self.outs, args[len(self.ins) :], strict=True))
        for p, a in outs + params:
            if isinstance(a, np.ndarray) and p.type not in C_TYPES:
                bound.setdefault(p.type, a.dtype.name)
        return bound

    def __call__(self, *args: Any) -> Any:
        if len(args) != len(self.ins) + len(self.outs):
            raise NotImplementedError(f"{self.name}: pass every input and output ({len(self.ins) + len(self.outs)})")
        bound = self._bind(args)
        n = None
        values = []
        for p, a in zip(self.ins + self.outs, args, strict=True):
            dtype = bound.get(p.type, p.type)
            if dtype not in C_TYPES:
                raise NotImplementedError(f"{self.name}: placeholder {p.type} of {p.name} is bound by no array")
            if isinstance(a, np.ndarray):
                if a.dtype.name != dtype:
                    raise TypeError(f"{self.name}: {p.name} is {dtype}, got an array of {a.dtype}")
                if not a.flags.c_contiguous:
                    raise NotImplementedError(f"{self.name}: {p.name} is not C-contiguous")
                if not p.raw:
                    if n is not None and a.size != n:
                        raise NotImplementedError(f"{self.name}: broadcasting is not modelled ({p.name})")
                    n = a.size
                values.append(a.ctypes.data)
            else:
                if p.raw or p in self.outs:
                    raise TypeError(f"{self.name}: {p.name} must be an array")
                v = np.dtype(dtype).type(a)
                if v != a:
                    raise TypeError(f"{self.name}: {p.name} is {dtype}, which does not hold {a!r}")
                values.append(v.item())
        if n is None:
            raise NotImplementedError(f"{self.name}: no non-raw array gives the loop size")
        self._library(bound, args).run(n, *values)
        outs = args[len(self.ins) :]
        return outs[0] if len(outs) == 1 else outs

    def _library(self, bound: dict[str, str], args: tuple[Any, ...]) -> Any:
        key = tuple(sorted(bound.items()))
        if key in self._libs:
            return self._libs[key]
        is_array = [isinstance(a, np.ndarray) for a in args]
        decls, body = [], []
        for p, array in zip(self.ins + self.outs, is_array, strict=True):
            c = C_TYPES[bound.get(p.type, p.type)][0]
            if not array:
                decls.append(f"{c} {p.name}")
            elif p.raw:  # CuPy declares inputs const: a kernel cannot write them
                decls.append(f"{'' if p in self.outs else 'const '}{c}* {p.name}")
            else:
                decls.append(f"{c}* _raw_{p.name}")
                const = "" if p in self.outs else "const "
                ref = "&" if p in self.outs else ""
                body.append(f"{const}{c}{ref} {p.name} = _raw_{p.name}[i];")
        # CuPy puts the placeholders' typedefs at file scope, before the preamble
        typedefs = "".join(f"typedef {C_TYPES[d][0]} {t};\n" for t, d in key)
        source = (
            f"{HOST_SHIMS}\n{typedefs}{self.preamble}\n"
            f'extern "C" void run(long long n, {", ".join(decls)}) {{\n'
            f"    for (long long i = 0; i < n; ++i) {{\n        {' '.join(body)}\n"
            f"        {self.operation}\n    }}\n}}\n"
        )
        lib = ctypes.CDLL(str(_compile(source)))
        lib.run.restype = None
        lib.run.argtypes = [ctypes.c_longlong] + [
            ctypes.c_void_p if array else C_TYPES[bound.get(p.type, p.type)][1]
            for p, array in zip(self.ins + self.outs, is_array, strict=True)
        ]
        self._libs[key] = lib
        return lib


def _compile(source: str) -> Path:
    """A shared library built from `source` (cached by its hash)."""
    tag = hashlib.sha256(source.encode()).hexdigest()[:16]
    lib_path = _BUILD / f"arrays-{tag}.so"
    if not lib_path.exists():
        _BUILD.mkdir(parents=True, exist_ok=True)
        src = _BUILD / f"arrays-{tag}.cpp"
        src.write_text(source)
        tmp = lib_path.with_suffix(f".{tag}.tmp")
        flags = ["-O2", "-ffp-contract=off", "-shared", "-fPIC"]
        subprocess.run([compiler(), *flags, "-o", str(tmp), str(src)], check=True)
        tmp.replace(lib_path)  # atomic: a parallel test never loads a half-written library
    return lib_path
