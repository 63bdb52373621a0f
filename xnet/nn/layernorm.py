"""LayerNorm: each sample normalised over its trailing dims, then scaled and shifted (as PyTorch)."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from xnet.backends import Array
from xnet.nn.checks import check_grad
from xnet.nn.module import Module
from xnet.nn.parameter import Parameter


class LayerNorm(Module):
    """(N, ..., *normalized_shape) -> same shape: (x - mean) / sqrt(var + eps) * weight + bias.

    Mean and (biased) variance are taken over the trailing `len(normalized_shape)` axes of each
    sample; weight (ones) and bias (zeros) have shape `normalized_shape` when `elementwise_affine`.
    """

    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5, elementwise_affine: bool = True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, Integral) else tuple(normalized_shape)
        if not shape or not all(isinstance(d, Integral) and not isinstance(d, bool) and d > 0 for d in shape):
            raise ValueError(
                f"LayerNorm: normalized_shape must be a positive int or a tuple of them, got {normalized_shape!r}"
            )
        if not isinstance(eps, Real) or isinstance(eps, bool) or not (eps > 0 and math.isfinite(eps)):
            raise ValueError(f"LayerNorm: eps must be a positive number, got {eps!r}")
        self.normalized_shape = tuple(int(d) for d in shape)
        self.eps = float(eps)
        self.weight = self.bias = None
        if elementwise_affine:
            self.weight = Parameter(self.backend.ones(self.normalized_shape, self.dtype), "weight", regularize=False)
            self.bias = Parameter(self.backend.zeros(self.normalized_shape, self.dtype), "bias", regularize=False)
        self._cache: tuple[Array, Array] | None = None
        self._out_shape: tuple[int, ...] | None = None

    @property
    def _name(self) -> str:
        return f"LayerNorm({self.normalized_shape})"

    def _axes(self) -> tuple[int, ...]:
        return tuple(range(-len(self.normalized_shape), 0))

    def forward(self, x: Array) -> Array:
        """(N, ..., *normalized_shape) -> same shape."""
        k = len(self.normalized_shape)
        if x.ndim <= k or tuple(x.shape[-k:]) != self.normalized_shape:
            raise ValueError(
                f"{self._name}: expected input (N, ..., {', '.join(map(str, self.normalized_shape))}), "
                f"got shape {tuple(x.shape)}"
            )
        xp, axes = self.xp, self._axes()
        centred = x - xp.mean(x, axis=axes, keepdims=True)
        inv_std = 1.0 / xp.sqrt(xp.mean(centred * centred, axis=axes, keepdims=True) + self.eps)
        xhat = centred * inv_std
        self._cache, self._out_shape = (xhat, inv_std), tuple(x.shape)
        return xhat if self.weight is None else xhat * self.weight.data + self.bias.data

    def backward(self, grad_out: Array) -> Array:
        """Same shape -> same shape; adds dweight = sum(g * xhat), dbias = sum(g) over the leading axes."""
        xhat, inv_std = check_grad(self, grad_out, self._out_shape, self._cache)
        xp, axes = self.xp, self._axes()
        lead = tuple(range(grad_out.ndim - len(self.normalized_shape)))
        g = grad_out
        if self.weight is not None:
            self.weight.add_grad(xp.sum(g * xhat, axis=lead))
            self.bias.add_grad(xp.sum(g, axis=lead))
            g = g * self.weight.data
        # d/dx of (x - mean) * inv_std: project out the mean and the xhat direction
        mean_g = xp.mean(g, axis=axes, keepdims=True)
        mean_gx = xp.mean(g * xhat, axis=axes, keepdims=True)
        return inv_std * (g - mean_g - xhat * mean_gx)

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"type": "layernorm", "normalized_shape": list(self.normalized_shape)}
        if self.eps != 1e-5:
            cfg["eps"] = self.eps
        if self.weight is None:
            cfg["elementwise_affine"] = False
        return cfg


__all__ = ["LayerNorm"]
