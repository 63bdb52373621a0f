"""Batch normalisation over features (N, D) and over channels of images (N, C, H, W)."""

from __future__ import annotations

import math
from typing import Any

from xnet.backends import Array
from xnet.nn.module import Module
from xnet.nn.parameter import Parameter


class _BatchNorm(Module):
    """Shared body: normalise each channel with batch statistics (training) or running ones (eval).

    y = gamma * (x - mean) / sqrt(var + eps) + beta. Training uses the biased batch variance to
    normalise and updates running_var with the unbiased one, as PyTorch does:
    running = (1 - momentum) * running + momentum * batch_statistic.
    """

    buffer_names = ("running_mean", "running_var")
    _axes: tuple[int, ...] = ()
    _arg = "num_features"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        name = type(self).__name__
        if not isinstance(num_features, int) or isinstance(num_features, bool) or num_features <= 0:
            raise ValueError(f"{name}: {self._arg} must be a positive int, got {num_features!r}")
        if not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"{name}: eps must be a positive number, got {eps!r}")
        if not isinstance(momentum, (int, float)) or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1], got {momentum!r}")
        self.num_features = num_features
        self.eps, self.momentum = float(eps), float(momentum)
        C = num_features
        self.weight = Parameter(self.backend.ones((C,), self.dtype), "weight", regularize=False)
        self.bias = Parameter(self.backend.zeros((C,), self.dtype), "bias", regularize=False)
        self.running_mean = self.backend.zeros((C,), self.dtype)
        self.running_var = self.backend.ones((C,), self.dtype)
        self._cache: tuple[Array, Array, bool, int] | None = None

    # -- shape handling, specialised by the subclasses -----------------------------------------

    def _expected(self) -> str:
        raise NotImplementedError

    def _check(self, x: Array) -> None:
        if x.ndim != len(self._axes) + 1 or x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self._arg}={self.num_features}): expected input "
                f"{self._expected()}, got shape {tuple(x.shape)}"
            )

    def _bcast(self, v: Array) -> Array:
        """(C,) -> the shape that broadcasts against the input: (1, C) or (1, C, 1, 1)."""
        return self.xp.reshape(v, (1, self.num_features) + (1,) * (len(self._axes) - 1))

    def _channel_sum(self, a: Array) -> Array:
        """Sum over every axis but the channels: input shape -> (C,)."""
        return self.xp.sum(a, axis=self._axes)

    def _channel_dot(self, a: Array, b: Array) -> Array:
        """sum(a * b) over every axis but the channels, input shapes -> (C,), without an a * b temporary."""
        raise NotImplementedError

    # -- computation ------------------------------------------------------------------------------

    def forward(self, x: Array) -> Array:
        """Input -> normalised, scaled and shifted input of the same shape."""
        self._check(x)
        xp = self.xp
        M = math.prod(x.shape) // self.num_features  # values per channel
        if self.training:
            if M < 2:
                raise ValueError(
                    f"{type(self).__name__}({self._arg}={self.num_features}): training needs more "
                    f"than 1 value per channel, got input shape {tuple(x.shape)}"
                )
            mean = self._channel_sum(x) * (1.0 / M)
            xc = x - self._bcast(mean)
            var = self._channel_dot(xc, xc) * (1.0 / M)
            m = self.momentum
            self.running_mean = (1.0 - m) * self.running_mean + m * mean
            self.running_var = (1.0 - m) * self.running_var + (m * M / (M - 1)) * var
        else:
            xc, var = x - self._bcast(self.running_mean), self.running_var
        inv_std = 1.0 / xp.sqrt(var + self.eps)  # (C,)
        # gamma * xhat + beta with xhat = xc * inv_std, the two factors folded into one per
        # channel: the full-size passes are the cost here (backward rebuilds what it needs of xhat)
        y = xc * self._bcast(self.weight.data * inv_std)
        y += self._bcast(self.bias.data)
        self._cache = (xc, inv_std, self.training, M)
        return y

    def backward(self, grad_out: Array) -> Array:
        """Gradient w.r.t. the input (same shape); accumulates d gamma and d beta."""
        xc, inv_std, training, M = self._cached(self._cache)
        dgamma = self._channel_dot(grad_out, xc) * inv_std  # sum(g * xhat)
        dbeta = self._channel_sum(grad_out)
        self.weight.grad += dgamma
        self.bias.grad += dbeta
        scale = self.weight.data * inv_std  # (C,)
        dx = grad_out * self._bcast(scale)
        if not training:
            return dx  # running statistics are constants: a plain affine map
        # closed form of dx = (1/M) inv_std (M dxhat - sum dxhat - xhat sum(dxhat xhat)) with
        # dxhat = gamma g, whose sums are gamma * dbeta and gamma * dgamma; per channel:
        # dx = scale * g - (scale * inv_std * dgamma / M) * xc - scale * dbeta / M
        dx -= xc * self._bcast(scale * inv_std * dgamma * (1.0 / M))
        dx -= self._bcast(scale * dbeta * (1.0 / M))
        return dx

    def config(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__.lower(),
            self._arg: self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
        }


class BatchNorm1D(_BatchNorm):
    """Batch norm over the features of (N, D) -> (N, D); gamma, beta, statistics of shape (D,)."""

    _axes = (0,)

    def _expected(self) -> str:
        return f"(N, {self.num_features})"

    def _channel_dot(self, a: Array, b: Array) -> Array:
        return self.xp.vecdot(a, b, axis=-2)  # over N of (N, D); the standard wants a negative axis


class BatchNorm2D(_BatchNorm):
    """Batch norm over the channels of (N, C, H, W) -> same shape; statistics per channel (C,)."""

    _axes = (0, 2, 3)
    _arg = "num_channels"

    def __init__(self, num_channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(num_channels, eps, momentum)

    @property
    def num_channels(self) -> int:
        """Number of channels C."""
        return self.num_features

    def _expected(self) -> str:
        return f"(N, {self.num_features}, H, W)"

    def _channel_dot(self, a: Array, b: Array) -> Array:
        # (N, C, H*W) rows: one dot product per sample and channel, then a sum over samples
        xp, (N, C) = self.xp, a.shape[:2]
        rows = (N, C, a.shape[2] * a.shape[3])
        return xp.sum(xp.vecdot(xp.reshape(a, rows), xp.reshape(b, rows), axis=-1), axis=0)


__all__ = ["BatchNorm1D", "BatchNorm2D"]
