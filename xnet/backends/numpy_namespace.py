"""NumPy as the NumPy backend's array namespace (`backend.xp`), its most called wrappers bound
straight to the C functions they end in.

`np.sum(a)` is a Python function that finds and calls `np.add.reduce(a)`; `np.take` and `np.argmax`
call the array's own method. Each wrapper costs about a microsecond, and an MLP's training step at
batch 16 (~170 us) called five of them (the loss's total, the last layer's bias gradient, the
batch's two gathers, the accuracy's argmax). This namespace is numpy's own, with those three
replaced by functions that call the same C function for an ndarray and numpy's own function for
anything else: the numbers are NumPy's, bit for bit (tests/backends/test_numpy_namespace.py).
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np


def _sum(x: Any, /, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False, **more: Any) -> Any:
    """np.sum: for an ndarray the ufunc reduction np.sum itself ends in."""
    if more or type(x) is not np.ndarray:
        return np.sum(x, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **more)
    return np.add.reduce(x, axis=axis, dtype=dtype, out=out, keepdims=keepdims)


def _take(x: Any, indices: Any, /, axis: Any = None, out: Any = None, mode: str = "raise") -> Any:
    """np.take: for an ndarray its own take method, which np.take calls."""
    if type(x) is not np.ndarray:
        return np.take(x, indices, axis=axis, out=out, mode=mode)
    return x.take(indices, axis=axis, out=out, mode=mode)


def _argmax(x: Any, /, axis: Any = None, out: Any = None, *, keepdims: bool = False) -> Any:
    """np.argmax: for an ndarray its own argmax method, which np.argmax calls."""
    if type(x) is not np.ndarray:
        return np.argmax(x, axis=axis, out=out, keepdims=keepdims)
    return x.argmax(axis=axis, out=out, keepdims=keepdims)


def make() -> types.ModuleType:
    """A namespace holding everything numpy does, with sum, take and argmax as above."""
    xp = types.ModuleType("numpy", np.__doc__)
    xp.__dict__.update({k: v for k, v in vars(np).items() if not k.startswith("__")})
    xp.sum, xp.take, xp.argmax = _sum, _take, _argmax
    # what numpy makes on first use (np.linalg, np.fft, ... load lazily): numpy's own, then
    xp.__getattr__ = lambda name: getattr(np, name)
    return xp


xp = make()
