"""Run an elementwise CUDA kernel's C source on the host: the CPU-only check of xnet's CUDA kernels.

`host_elementwise` compiles a kernel as CuPy's ElementwiseKernel would see it (its preamble,
scalar inputs, one output per element, the loop index `i`) into a shared library with the host's
C++ compiler, with `__device__` removed and `__umul64hi` computed through a 128-bit product.
It covers the scalar-in, uint64-out kernels xnet has; anything else is refused, not guessed at.
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

C_TYPES = {"uint64": ("unsigned long long", ctypes.c_uint64, np.uint64)}
HOST_SHIMS = r"""
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
    """'uint64 a, uint64 b' -> [('uint64', 'a'), ('uint64', 'b')]; only the types in C_TYPES."""
    out = []
    for part in spec.split(","):
        dtype, name = part.split()
        if dtype not in C_TYPES:
            raise NotImplementedError(f"host_elementwise: type {dtype!r} is not supported")
        out.append((dtype, name))
    return out


def host_elementwise(in_params: str, out_params: str, operation: str, preamble: str = "") -> Callable[..., None]:
    """fn(*scalars, out): what ElementwiseKernel(in_params, out_params, operation, preamble=...) does, on the host."""
    ins, outs = _params(in_params), _params(out_params)
    if len(outs) != 1:
        raise NotImplementedError("host_elementwise: one output array only")
    (out_type, out_name), c_out = outs[0], C_TYPES[outs[0][0]][0]
    args = ", ".join(f"{C_TYPES[t][0]} {n}" for t, n in ins)
    source = (
        f"{HOST_SHIMS}\n{preamble}\n"
        f'extern "C" void run(long long n, {args}, {c_out}* out_array) {{\n'
        f"    for (long long i = 0; i < n; ++i) {{\n"
        f"        {c_out} {out_name};\n        {operation}\n        out_array[i] = {out_name};\n    }}\n}}\n"
    )
    tag = hashlib.sha256(source.encode()).hexdigest()[:16]
    lib_path = _BUILD / f"kernel-{tag}.so"
    if not lib_path.exists():
        _BUILD.mkdir(parents=True, exist_ok=True)
        src = _BUILD / f"kernel-{tag}.cpp"
        src.write_text(source)
        tmp = lib_path.with_suffix(f".{tag}.tmp")
        subprocess.run([compiler(), "-O2", "-shared", "-fPIC", "-o", str(tmp), str(src)], check=True)
        tmp.replace(lib_path)  # atomic: a parallel test never loads a half-written library
    lib = ctypes.CDLL(str(lib_path))
    lib.run.restype = None
    lib.run.argtypes = [ctypes.c_longlong] + [C_TYPES[t][1] for t, _ in ins] + [ctypes.c_void_p]

    def run(*call_args: object) -> None:
        *scalars, out = call_args
        if len(scalars) != len(ins):
            raise TypeError(f"kernel takes {len(ins)} inputs and the output, got {len(call_args)} arguments")
        for (dtype, name), value in zip(ins, scalars, strict=True):
            if not isinstance(value, C_TYPES[dtype][2]):
                raise TypeError(f"kernel input {name} is {dtype}: pass a NumPy {dtype}, got {type(value).__name__}")
        if not (isinstance(out, np.ndarray) and out.dtype == C_TYPES[out_type][2] and out.flags.c_contiguous):
            raise TypeError(f"kernel output {out_name} must be a contiguous {out_type} array")
        lib.run(out.size, *(int(v) for v in scalars), out.ctypes.data)

    return run
