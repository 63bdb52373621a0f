"""Smooth activations as PyTorch defines them: GELU (exact or tanh), SiLU, ELU and Softplus.

Each keeps its input for backward (the derivatives are written in x), runs elementwise on any
shape (N, ...) -> (N, ...), and never overflows: exponentials only see non-positive arguments.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from xnet.backends import Array
from xnet.nn.checks import check_grad
from xnet.nn.module import Module
from xnet.nn.special import normal_cdf, normal_pdf

_TANH_K = math.sqrt(2.0 / math.pi)  # GELU's tanh form: 0.5 x (1 + tanh(k (x + 0.044715 x^3)))
_TANH_C = 0.044715


def _number(layer: str, name: str, value: Any, positive: bool = False) -> float:
    """`value` as a float; TypeError/ValueError naming the layer and argument otherwise."""
    if not isinstance(value, Real) or isinstance(value, bool):
        raise TypeError(f"{layer}: {name} must be a number, got {value!r}")
    if not math.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"{layer}: {name} must be a finite {'positive ' if positive else ''}number, got {value!r}")
    return float(value)


class _Smooth(Module):
    """Base: forward(x) = f(x) keeping x; backward(g) = g * f'(x). Subclasses give f and f'."""

    _type = ""

    def __init__(self) -> None:
        super().__init__()
        self._x: Array | None = None

    def value(self, x: Array) -> Array:
        """f(x), elementwise."""
        raise NotImplementedError

    def slope(self, x: Array) -> Array:
        """f'(x), elementwise."""
        raise NotImplementedError

    def forward(self, x: Array) -> Array:
        """(N, ...) -> (N, ...)."""
        self._x = x
        return self.value(x)

    def backward(self, grad_out: Array) -> Array:
        """(N, ...) -> (N, ...): grad * f'(x)."""
        x = check_grad(self, grad_out, None if self._x is None else tuple(self._x.shape), self._x)
        return grad_out * self.slope(x)

    def _sigmoid(self, x: Array) -> Array:
        return 0.5 * (1.0 + self.xp.tanh(0.5 * x))  # no overflow for large |x|, unlike 1 / (1 + exp(-x))

    def config(self) -> dict[str, Any]:
        return {"type": self._type}


class GELU(_Smooth):
    """x * Phi(x) (approximate="none"), or PyTorch's tanh approximation (approximate="tanh")."""

    _type = "gelu"

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self._t: Array | None = None  # forward's tanh (approximate="tanh") or Phi(x), for backward
        self._cdf: Array | None = None

    def value(self, x: Array) -> Array:
        if self.approximate == "tanh":
            self._t = self.xp.tanh(_TANH_K * (x + _TANH_C * x * x * x))
            return 0.5 * x * (1.0 + self._t)
        # Phi costs about a hundred array operations (special.py): keep it for backward
        self._cdf = normal_cdf(self.xp, x)
        return x * self._cdf

    def slope(self, x: Array) -> Array:
        if self.approximate == "tanh":
            t = self._t
            return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _TANH_K * (1.0 + 3.0 * _TANH_C * x * x)
        return self._cdf + x * normal_pdf(self.xp, x)

    def config(self) -> dict[str, Any]:
        return {"type": "gelu", **({"approximate": "tanh"} if self.approximate == "tanh" else {})}


class SiLU(_Smooth):
    """x * sigmoid(x) (also called swish)."""

    _type = "silu"

    def value(self, x: Array) -> Array:
        return x * self._sigmoid(x)

    def slope(self, x: Array) -> Array:
        s = self._sigmoid(x)
        return s * (1.0 + x * (1.0 - s))


class ELU(_Smooth):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""

    _type = "elu"

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = _number("ELU", "alpha", alpha)

    def value(self, x: Array) -> Array:
        xp = self.xp
        return xp.where(x > 0, x, self.alpha * xp.expm1(xp.minimum(x, 0.0)))

    def slope(self, x: Array) -> Array:
        xp = self.xp
        return xp.where(x > 0, 1.0, self.alpha * xp.exp(xp.minimum(x, 0.0)))

    def config(self) -> dict[str, Any]:
        return {"type": "elu", "alpha": self.alpha}


class Softplus(_Smooth):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as PyTorch)."""

    _type = "softplus"

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = _number("Softplus", "beta", beta, positive=True)
        self.threshold = _number("Softplus", "threshold", threshold)

    def value(self, x: Array) -> Array:
        xp = self.xp
        bx = self.beta * x
        # log(1 + e^bx) = max(bx, 0) + log1p(e^-|bx|): no overflow either side
        soft = (xp.maximum(bx, 0.0) + xp.log1p(xp.exp(-xp.abs(bx)))) / self.beta
        return xp.where(bx > self.threshold, x, soft)

    def slope(self, x: Array) -> Array:
        bx = self.beta * x
        return self.xp.where(bx > self.threshold, 1.0, self._sigmoid(bx))

    def config(self) -> dict[str, Any]:
        return {"type": "softplus", "beta": self.beta, "threshold": self.threshold}


__all__ = ["ELU", "GELU", "SiLU", "Softplus"]
