"""Dropout: zero random units in training, scaling the kept ones so the expectation is unchanged."""

from __future__ import annotations

from typing import Any

from xnet.backends import Array
from xnet.nn.checks import check_grad
from xnet.nn.module import Module


class Dropout(Module):
    """Inverted dropout, any shape (N, ...) -> same shape.

    Training: each unit is kept with probability 1 - p and scaled by 1 / (1 - p), so evaluation
    is the identity and needs no rescaling. The mask comes from the backend's "dropout" random stream.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be a number in [0, 1), got {p!r}")
        self.p = float(p)
        self._mask: Array | None = None
        self._out_shape: tuple[int, ...] | None = None  # None until forward has run

    def forward(self, x: Array) -> Array:
        """(N, ...) -> (N, ...)."""
        self._out_shape = x.shape
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        stream, keep, scale = self.backend.rng.stream("dropout"), 1.0 - self.p, 1.0 / (1.0 - self.p)
        fused = self.backend.fused_dropout(x, stream, keep, scale)  # the same mask and product, one kernel
        if fused is not None:
            out, self._mask = fused
            return out
        mask = stream.bernoulli(tuple(x.shape), keep, x.dtype)
        mask *= scale  # fold the rescaling into the mask: one multiply per pass
        self._mask = mask
        return x * mask

    def backward(self, grad_out: Array) -> Array:
        """(N, ...) -> (N, ...): the same mask and scale as the forward pass."""
        check_grad(self, grad_out, self._out_shape)
        return grad_out if self._mask is None else grad_out * self._mask

    def config(self) -> dict[str, Any]:
        return {"type": "dropout", "p": self.p}


__all__ = ["Dropout"]
