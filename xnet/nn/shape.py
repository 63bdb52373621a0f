"""Layers that only change the shape: Flatten and Reshape (the batch axis is kept)."""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any

from xnet.backends import Array
from xnet.nn.checks import check_grad
from xnet.nn.module import Module


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...), e.g. (N, C, H, W) -> (N, C*H*W)."""

    def __init__(self) -> None:
        super().__init__()
        self._in_shape: tuple[int, ...] | None = None
        self._out_shape: tuple[int, ...] | None = None

    def forward(self, x: Array) -> Array:
        """(N, ...) -> (N, prod(...))."""
        if x.ndim < 1:
            raise ValueError("Flatten: expected input (N, ...), got a 0-d array")
        self._in_shape = tuple(x.shape)
        self._out_shape = (x.shape[0], math.prod(x.shape[1:]))
        return self.xp.reshape(x, self._out_shape)

    def backward(self, grad_out: Array) -> Array:
        """(N, prod(...)) -> (N, ...)."""
        in_shape = check_grad(self, grad_out, self._out_shape, self._in_shape)
        return self.xp.reshape(grad_out, in_shape)

    def config(self) -> dict[str, Any]:
        return {"type": "flatten"}


class Reshape(Module):
    """(N, ...) -> (N, *shape): `shape` is per sample and may hold one -1 (inferred)."""

    def __init__(self, shape: tuple[int, ...] | list[int]):
        super().__init__()
        try:
            # numpy integers are fine too; keep plain ints so config() stays JSON-able
            target = tuple(int(d) if isinstance(d, Integral) and not isinstance(d, bool) else d
                           for d in shape)
        except TypeError:
            raise TypeError(f"Reshape: shape must be a tuple of ints, got {shape!r}") from None
        ok = all(type(d) is int and (d > 0 or d == -1) for d in target)
        if not ok or target.count(-1) > 1:
            raise ValueError(
                f"Reshape: shape must hold positive ints and at most one -1, got {target!r}"
            )
        self.shape = target
        self._in_shape: tuple[int, ...] | None = None
        self._out_shape: tuple[int, ...] | None = None

    @property
    def _name(self) -> str:
        """How errors name this layer."""
        return f"Reshape(shape={self.shape})"

    def _target(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        size = math.prod(in_shape[1:])
        known = math.prod(d for d in self.shape if d != -1)
        if -1 in self.shape:
            fits = size % known == 0
            out = tuple(size // known if d == -1 else d for d in self.shape)
        else:
            fits, out = size == known, self.shape
        if not fits:
            raise ValueError(
                f"{self._name}: a sample of shape {in_shape[1:]} ({size} values) "
                f"cannot become {self.shape}; got input shape {in_shape}"
            )
        return (in_shape[0], *out)

    def forward(self, x: Array) -> Array:
        """(N, ...) -> (N, *shape)."""
        if x.ndim < 1:
            raise ValueError(f"{self._name}: expected input (N, ...), got 0-d")
        self._in_shape = tuple(x.shape)
        self._out_shape = self._target(self._in_shape)
        return self.xp.reshape(x, self._out_shape)

    def backward(self, grad_out: Array) -> Array:
        """(N, *shape) -> (N, ...)."""
        in_shape = check_grad(self, grad_out, self._out_shape, self._in_shape)
        return self.xp.reshape(grad_out, in_shape)

    def config(self) -> dict[str, Any]:
        return {"type": "reshape", "shape": list(self.shape)}


__all__ = ["Flatten", "Reshape"]
