"""Parameter: a trainable array with its gradient."""

from __future__ import annotations

from typing import Any

import numpy as np

from xnet.backends import Array


def dtype_name(dtype: Any) -> str:
    """'float32', 'int64', ... for a dtype of any backend (array-api-strict's print as 'array_api_strict.int64')."""
    return getattr(dtype, "name", None) or str(dtype).rpartition(".")[2]


def dtype_kind(dtype: Any) -> str:
    """NumPy's one-letter kind of a dtype of any backend: 'f' float, 'i'/'u' int, 'b' bool, 'c' complex..."""
    kind = getattr(dtype, "kind", None)  # NumPy and CuPy dtypes; array-api-strict's have none
    if kind is None:
        try:
            kind = np.dtype(dtype_name(dtype)).kind
        except TypeError:
            return "?"
    return kind


def is_floating(a: Any, numeric: bool = False) -> bool:
    """Whether `a` is an array of real floats (of bools, ints or floats with `numeric`); O(1)."""
    dtype = getattr(a, "dtype", None)
    if dtype is None:
        return False
    return dtype_kind(dtype) in ("biuf" if numeric else "f")


class Parameter:
    """A trainable array `data`, its gradient `grad` (same shape, accumulated by backward).

    `regularize` is True for weights and False for biases and batch-norm scales/shifts, so L1/L2
    and weight decay touch only weights unless asked otherwise.
    """

    __slots__ = ("data", "grad", "name", "regularize")

    def __init__(self, data: Array, name: str = "", regularize: bool = True):
        if not hasattr(data, "shape") or not hasattr(data, "dtype"):
            raise TypeError(
                f"Parameter{f' {name!r}' if name else ''}: data must be an array (e.g. backend.asarray(...)), "
                f"got {type(data).__name__}"
            )
        if not is_floating(data):  # as PyTorch: only floating-point tensors can have gradients
            raise TypeError(
                f"Parameter{f' {name!r}' if name else ''}: data must be floating-point (float32 or float64), "
                f"got {dtype_name(data.dtype)}"
            )
        self.data = data
        self.grad = data * 0  # zeros on the same device and dtype as data
        self.name = name
        self.regularize = regularize

    @property
    def shape(self) -> tuple[int, ...]:
        """The parameter's shape."""
        return tuple(self.data.shape)

    @property
    def size(self) -> int:
        """Number of scalars in the parameter."""
        n = 1
        for d in self.data.shape:
            n *= d
        return n

    def __repr__(self) -> str:
        return f"Parameter({self.name or '?'}, shape={self.shape})"
