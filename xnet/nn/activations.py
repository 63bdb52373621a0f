"""Activation functions as modules: elementwise ReLU, LeakyReLU, Sigmoid, Tanh, and Softmax."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from xnet.backends import Array
from xnet.nn.batched import map_batch
from xnet.nn.checks import check_grad
from xnet.nn.module import Module, accepted_arguments
from xnet.nn.smooth import ELU, GELU, SiLU, Softplus


class _Elementwise(Module):
    """Base of the activations: no parameters, output shape = input shape.

    The elementwise ones run through `map_batch`: on the CPU a large pass (over 16 MB) goes
    through the batch in 4 MB chunks on all cores, whose temporaries mostly stay in cache.
    Forward keeps its output's shape, which backward's gradient must have.
    """

    _type = ""

    def __init__(self) -> None:
        super().__init__()
        self._cache: Array | None = None
        self._out_shape: tuple[int, ...] | None = None

    def config(self) -> dict[str, Any]:
        return {"type": self._type}


class ReLU(_Elementwise):
    """max(x, 0), any shape (N, ...) -> same shape."""

    _type = "relu"

    def __init__(self) -> None:
        super().__init__()
        self._on_backend_change()

    def _on_backend_change(self) -> None:
        # the formulation, chosen once per backend: where every operation is a kernel launch
        # (launch_bound), maximum in forward and a mask read off the output in backward (three
        # operations, not four); elsewhere a float mask, chunk by chunk
        wide = self.backend.launch_bound
        self._forward_on = self._forward_max if wide else self._forward_mask
        self._backward_on = self._backward_max if wide else self._backward_mask

    def forward(self, x: Array) -> Array:
        """(N, ...) -> (N, ...)."""
        return self._forward_on(x)

    def backward(self, grad_out: Array) -> Array:
        """(N, ...) -> (N, ...): grad where x > 0, else 0."""
        return self._backward_on(grad_out)

    def _forward_max(self, x: Array) -> Array:
        """(N, ...) -> (N, ...) in one operation; backward reads the mask off the output."""
        self._cache = y = self.xp.maximum(x, 0.0)
        self._out_shape = y.shape
        return y

    def _backward_max(self, grad_out: Array) -> Array:
        """(N, ...) -> (N, ...): grad where the output is > 0, else 0."""
        y = check_grad(self, grad_out, self._out_shape, self._cache)
        return self.xp.where(y > 0, grad_out, 0.0)

    def _forward_mask(self, x: Array) -> Array:
        """(N, ...) -> (N, ...)."""
        # A float 0/1 mask multiplied in is faster on NumPy than maximum + a boolean mask in
        # backward (measured ~1.6x for fwd+bwd), and is standard (the strict backend refuses
        # bool*float). The cost: ReLU(-inf) is nan instead of 0, which only diverged nets see.
        xp = self.xp

        def relu(x: Array) -> tuple[Array, Array]:
            mask = xp.astype(x > 0, x.dtype)
            return x * mask, mask

        # the NumPy backend's compiled kernel makes both in one pass over x (1.4 -> 0.5 ms for a
        # (64, 32, 26, 26) batch); the reference makes them chunk by chunk
        fused = self.backend.fused_relu(x)
        y, self._cache = fused if fused is not None else map_batch(self.backend, relu, (x,), outputs=2)
        self._out_shape = y.shape
        return y

    def _backward_mask(self, grad_out: Array) -> Array:
        """(N, ...) -> (N, ...): grad where x > 0, else 0."""
        slope = check_grad(self, grad_out, self._out_shape, self._cache)
        return map_batch(self.backend, _times, (grad_out, slope))[0]


class LeakyReLU(_Elementwise):
    """x for x > 0, alpha * x otherwise; any shape -> same shape."""

    _type = "leakyrelu"

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        if not isinstance(alpha, Real) or isinstance(alpha, bool):
            raise TypeError(f"LeakyReLU: alpha must be a number, got {alpha!r}")
        if not math.isfinite(alpha):
            raise ValueError(f"LeakyReLU: alpha must be a finite number, got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, x: Array) -> Array:
        """(N, ...) -> (N, ...)."""
        # slope per element: 1 where x > 0, alpha elsewhere (same float-mask trick as ReLU)
        xp, alpha = self.xp, self.alpha

        def leaky_relu(x: Array) -> tuple[Array, Array]:
            slope = xp.astype(x > 0, x.dtype) * (1.0 - alpha) + alpha
            return x * slope, slope

        y, self._cache = map_batch(self.backend, leaky_relu, (x,), outputs=2)
        self._out_shape = y.shape
        return y

    def backward(self, grad_out: Array) -> Array:
        """(N, ...) -> (N, ...)."""
        slope = check_grad(self, grad_out, self._out_shape, self._cache)
        return map_batch(self.backend, _times, (grad_out, slope))[0]

    def config(self) -> dict[str, Any]:
        return {"type": self._type, "alpha": self.alpha}


class Sigmoid(_Elementwise):
    """1 / (1 + exp(-x)), any shape -> same shape; no overflow for large |x|."""

    _type = "sigmoid"

    def forward(self, x: Array) -> Array:
        """(N, ...) -> (N, ...) in (0, 1)."""
        xp = self.xp

        def sigmoid(x: Array) -> tuple[Array]:
            return (0.5 * (1.0 + xp.tanh(0.5 * x)),)  # the tanh form never overflows, exp(-x) does

        self._cache = y = map_batch(self.backend, sigmoid, (x,))[0]
        self._out_shape = y.shape
        return y

    def backward(self, grad_out: Array) -> Array:
        """(N, ...) -> (N, ...): grad * y * (1 - y)."""
        y = check_grad(self, grad_out, self._out_shape, self._cache)
        return map_batch(self.backend, lambda g, y: (sigmoid_grad(g, y),), (grad_out, y))[0]


class Tanh(_Elementwise):
    """tanh(x), any shape -> same shape."""

    _type = "tanh"

    def forward(self, x: Array) -> Array:
        """(N, ...) -> (N, ...) in (-1, 1)."""
        xp = self.xp
        self._cache = y = map_batch(self.backend, lambda x: (xp.tanh(x),), (x,), temporaries=0)[0]
        self._out_shape = y.shape
        return y

    def backward(self, grad_out: Array) -> Array:
        """(N, ...) -> (N, ...): grad * (1 - y^2)."""
        y = check_grad(self, grad_out, self._out_shape, self._cache)
        return map_batch(self.backend, lambda g, y: (tanh_grad(g, y),), (grad_out, y))[0]


class Identity(_Elementwise):
    """x unchanged (a placeholder where a layer slot takes an activation)."""

    _type = "identity"

    def forward(self, x: Array) -> Array:
        """(N, ...) -> (N, ...)."""
        self._out_shape = x.shape
        return x

    def backward(self, grad_out: Array) -> Array:
        """(N, ...) -> (N, ...)."""
        check_grad(self, grad_out, self._out_shape)
        return grad_out


def relu_grad(xp: Any, g: Array, y: Array) -> Array:
    """Gradient g at ReLU's output y -> at its input: g where y > 0 (exactly where the input was > 0)."""
    return g * xp.astype(y > 0, y.dtype)


def sigmoid_grad(g: Array, y: Array) -> Array:
    """Gradient g at Sigmoid's output y -> at its input: g * y * (1 - y)."""
    return g * (y * (1.0 - y))


def tanh_grad(g: Array, y: Array) -> Array:
    """Gradient g at Tanh's output y -> at its input: g * (1 - y^2)."""
    return g * (1.0 - y * y)


def _times(a: Array, b: Array) -> tuple[Array]:
    """(a * b,): the backward of a layer that cached its slope (ReLU, LeakyReLU)."""
    return (a * b,)


def softmax(xp: Any, x: Array) -> Array:
    """Numerically stable softmax along the last axis, (..., K) -> (..., K)."""
    e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
    e /= xp.sum(e, axis=-1, keepdims=True)
    return e


def softmax_backward(xp: Any, y: Array, grad_out: Array) -> Array:
    """Jacobian-vector product of softmax output y (..., K): y * (g - sum(g * y))."""
    return y * (grad_out - xp.sum(grad_out * y, axis=-1, keepdims=True))


class Softmax(_Elementwise):
    """Softmax along the last axis: (N, K) -> (N, K), rows sum to 1.

    For classification prefer raw logits with the CrossEntropy loss, which fuses the softmax
    more stably and cheaply; this module is for models that need probabilities inside.
    """

    _type = "softmax"

    def forward(self, x: Array) -> Array:
        """(..., K) -> (..., K)."""
        if x.ndim < 1:
            raise ValueError(f"Softmax: expected input (N, K), got shape {tuple(x.shape)}")
        y = softmax(self.xp, x)
        self._cache, self._out_shape = y, y.shape
        return y

    def backward(self, grad_out: Array) -> Array:
        """(..., K) -> (..., K): the full Jacobian-vector product."""
        y = check_grad(self, grad_out, self._out_shape, self._cache)
        return softmax_backward(self.xp, y, grad_out)


_ACTIVATIONS: dict[str, type[Module]] = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "identity": Identity,
    "softmax": Softmax,
    "gelu": GELU,
    "silu": SiLU,
    "elu": ELU,
    "softplus": Softplus,
}
ACTIVATIONS: tuple[str, ...] = tuple(_ACTIVATIONS)
# config() writes the lowercase class name; accept it and a few common spellings too
_ALIASES = {"leakyrelu": "leaky_relu", "linear": "identity", "none": "identity", "swish": "silu"}


def get_activation(name: str, **kwargs: Any) -> Module:
    """A new activation module by name ('relu', 'leaky_relu', ...); kwargs go to its constructor."""
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else None
    key = _ALIASES.get(key, key) if key is not None else None
    if key not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid names: {', '.join(ACTIVATIONS)}")
    cls = _ACTIVATIONS[key]
    valid = accepted_arguments(cls)
    unknown = [k for k in kwargs if k not in valid]
    if unknown:
        raise TypeError(
            f"activation {key!r}: unknown argument(s) {', '.join(map(repr, unknown))} "
            f"(accepted: {', '.join(valid) or 'none'})"
        )
    return cls(**kwargs)


__all__ = [
    "ACTIVATIONS",
    "Identity",
    "LeakyReLU",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "get_activation",
    "softmax",
    "softmax_backward",
]
