"""Parameter: a trainable array with its gradient."""

from __future__ import annotations

from xnet.backends import Array


class Parameter:
    """A trainable array `data`, its gradient `grad` (same shape, accumulated by backward).

    `regularize` is True for weights and False for biases and batch-norm scales/shifts, so L1/L2
    and weight decay touch only weights unless asked otherwise.
    """

    __slots__ = ("data", "grad", "name", "regularize")

    def __init__(self, data: Array, name: str = "", regularize: bool = True):
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
