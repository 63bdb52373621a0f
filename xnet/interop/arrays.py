"""`xnet.asarray`: any array or DLPack producer as an array of an xnet device, shared where DLPack allows."""

from __future__ import annotations

from typing import Any

from xnet.backends import Array, Backend, default_backend, get_backend


def asarray(a: Any, device: str | Backend = "cpu", dtype: Any = None) -> Array:
    """`a` (a NumPy array, a torch tensor, a JAX or CuPy array, any DLPack producer; any shape) on `device`.

    A producer on the same device (a CPU tensor for "cpu", a CUDA tensor for "cuda") is wrapped,
    not copied, unless `dtype` asks for another type; writing into the result then writes into it.
    """
    backend = default_backend() if device == "cpu" else get_backend(device)
    return backend.asarray(a, dtype)
