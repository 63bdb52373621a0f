"""Initialisers (placeholder: the layers issue fills this in)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from xnet.backends import Array, Backend


def initialize(
    init: str | Callable, backend: Backend, shape: tuple[int, ...], fan_in: int, fan_out: int, dtype: str
) -> Array:
    """An array of `shape` drawn by initialiser `init` from the backend's seeded source."""
    if callable(init):
        return backend.asarray(init(backend, shape, fan_in, fan_out, dtype), dtype)
    if init == "zeros":
        return backend.zeros(shape, dtype)
    if init == "xavier_uniform":
        a = math.sqrt(6.0 / (fan_in + fan_out))
        return backend.rng.uniform(shape, -a, a, dtype)
    raise ValueError(f"unknown initialiser {init!r}")


__all__ = ["initialize", "Any"]
