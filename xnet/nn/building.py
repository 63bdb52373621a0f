"""Where new layers are built: `build_on(backend, dtype)` and what it accepts (the build context, beside Module)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import numpy as np

from xnet.backends import Backend, default_backend, get_backend

_build_stack: list[tuple[Backend, str]] = []


def float_dtype(dtype: Any, where: str) -> str:
    """'float32' or 'float64' for that name or NumPy dtype; ValueError naming `where` otherwise."""
    name = dtype if isinstance(dtype, str) else None
    if name is None and dtype is not None:
        with contextlib.suppress(TypeError):
            name = np.dtype(dtype).name  # np.float64, np.dtype("f4"), ...
    if name not in ("float32", "float64"):
        raise ValueError(f"{where}: dtype must be 'float32' or 'float64', got {dtype!r}")
    return name


def accepted_arguments(cls: type) -> list[str]:
    """The keyword arguments `cls(...)` takes, in order (for 'unknown argument' messages)."""
    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]


@contextlib.contextmanager
def build_on(backend: Backend | str, dtype: str = "float32") -> Iterator[Backend]:
    """Modules created inside this block put their parameters on `backend` with `dtype`."""
    b = get_backend(backend)
    dtype = float_dtype(dtype, "build_on")
    _build_stack.append((b, dtype))
    try:
        yield b
    finally:
        _build_stack.pop()


def current_build() -> tuple[Backend, str]:
    """The (backend, dtype) new modules are built on: the innermost `build_on`, else numpy float32."""
    return _build_stack[-1] if _build_stack else (default_backend(), "float32")


__all__ = ["accepted_arguments", "build_on", "current_build", "float_dtype"]
