"""Backends: the only place that imports an array library. Pick one with `get_backend(spec)`."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from xnet.backends.base import Array, Backend, BackendUnavailable
from xnet.backends.numpy_backend import NumpyBackend
from xnet.backends.rng import Stream

DEVICE_SPECS = ("cpu", "cuda", "cuda:N", "auto", "strict", "strict:no_float64")

__all__ = [
    "Array",
    "Backend",
    "BackendUnavailable",
    "BackendStatus",
    "DEVICE_SPECS",
    "available_backends",
    "backend_of",
    "get_backend",
    "default_backend",
    "host_stream",
]


def get_backend(spec: str | Backend = "cpu", seed: int = 0) -> Backend:
    """A backend for 'cpu', 'cuda', 'cuda:N', 'auto' (cuda when usable, else cpu) or 'strict'.

    Raises ValueError for a spec it does not know and BackendUnavailable (one line saying what
    is missing) when the backend cannot run here.
    """
    if isinstance(spec, Backend):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', got {type(spec).__name__}")
    s = spec.strip().lower()
    if s in ("cpu", "numpy"):
        return NumpyBackend(seed)
    if s == "auto":
        try:
            return get_backend("cuda", seed)
        except BackendUnavailable:
            return NumpyBackend(seed)
    m = re.fullmatch(r"(?:cuda|cupy|gpu)(?::(\d+))?", s)
    if m:
        from xnet.backends.cupy_backend import CupyBackend

        return CupyBackend(seed, int(m.group(1) or 0))
    m = re.fullmatch(r"strict(?::(device1|device2|no_float64))?", s)
    if m:
        from xnet.backends.strict_backend import StrictBackend

        return StrictBackend(seed, m.group(1) or "device1")
    raise ValueError(f"unknown device {spec!r}; expected one of {', '.join(DEVICE_SPECS)}")


_default: Backend | None = None


def default_backend() -> Backend:
    """The backend layers are built on when none is given: NumPy on the CPU, seed 0."""
    global _default
    if _default is None:
        _default = NumpyBackend(0)
    return _default


def backend_of(a: Array) -> Backend:
    """The backend array `a` lives on: the newest live backend that owns it (Backend.owns).

    Optimizers, which are given parameters rather than a backend, find theirs here once. A NumPy
    array no live backend claims gets `default_backend()`; an array of another library, a bare
    Backend, whose fast paths are all absent (the reference bodies run)."""
    for ref in reversed(Backend._live):
        b = ref()
        if b is not None and b.owns(a):
            return b
    return default_backend() if isinstance(a, np.ndarray) else Backend()


def host_stream(seed: int, name: str, epoch: int = 0) -> Stream:
    """The random stream `name` of (seed, epoch) drawing NumPy arrays on the host (data preparation)."""
    return Stream(default_backend(), seed, name, epoch)


@dataclass
class BackendStatus:
    """Whether a backend can run here, and why not."""

    spec: str
    available: bool
    detail: str


def available_backends() -> list[BackendStatus]:
    """Every backend xnet knows, each with available/unavailable and the reason."""
    out = []
    for spec in ("cpu", "strict", "cuda"):
        try:
            b = get_backend(spec)
            detail = b.gpu_name() if hasattr(b, "gpu_name") else b.device_name
            out.append(BackendStatus(spec, True, detail))
        except BackendUnavailable as e:
            out.append(BackendStatus(spec, False, str(e)))
    return out
