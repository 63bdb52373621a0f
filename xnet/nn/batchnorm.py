"""Batch normalisation over features (N, D) and over channels of images (N, C, H, W)."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from xnet.backends import Array
from xnet.nn.batched import map_batch, sample_bytes
from xnet.nn.checks import check_grad
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
    # data-parallel training with synchronised batch norm sets a MomentSync (xnet/parallel/sync_batchnorm.py)
    # here: training statistics and gradient sums then span every rank's batch
    sync: Any = None

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        name = type(self).__name__
        if not isinstance(num_features, int) or isinstance(num_features, bool) or num_features <= 0:
            raise ValueError(f"{name}: {self._arg} must be a positive int, got {num_features!r}")
        # bool is an int to Python, but eps=True is a mistake, not 1.0; inf would zero the output
        if not _is_real(eps) or not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"{name}: eps must be a positive number (finite, not a bool), got {eps!r}")
        if not _is_real(momentum) or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1] (a number, not a bool), got {momentum!r}")
        self.num_features = num_features
        self.eps, self.momentum = float(eps), float(momentum)
        C = num_features
        self.weight = Parameter(self.backend.ones((C,), self.dtype), "weight", regularize=False)
        self.bias = Parameter(self.backend.zeros((C,), self.dtype), "bias", regularize=False)
        self.running_mean = self.backend.zeros((C,), self.dtype)
        self.running_var = self.backend.ones((C,), self.dtype)
        self._cache: tuple[Array, Array, Array, bool, int] | None = None  # x, mean, inv_std, ...
        self._out_shape: tuple[int, ...] | None = None  # checked against backward's gradient
        self._on_backend_change()

    def _on_backend_change(self) -> None:
        # chosen once per backend: whole-batch operations where each is a launch (launch_bound), else chunks
        wide = self.backend.launch_bound
        self._input_grad = self._input_grad_whole if wide else self._input_grad_chunked
        self._batch_moments = self._moments_whole if wide else self._moments_chunked
        self._inv_std = self._inv_std_power if wide else self._inv_std_root

    # -- shape handling, specialised by the subclasses -----------------------------------------

    def _expected(self) -> str:
        raise NotImplementedError

    @property
    def _name(self) -> str:
        """How errors name this layer (a property: Module.train() scans the instance's attributes)."""
        return f"{type(self).__name__}({self._arg}={self.num_features})"

    def values_per_channel(self, samples: int) -> int | None:
        """How many values each channel's statistics average over in a batch of `samples`, for inputs
        shaped as in the last forward pass (None before any)."""
        if self._out_shape is None:
            return None
        return samples * math.prod(self._out_shape[2:])

    def _check(self, x: Array) -> None:
        if x.ndim != len(self._axes) + 1 or x.shape[1] != self.num_features:
            raise ValueError(f"{self._name}: expected input {self._expected()}, got shape {tuple(x.shape)}")

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

    # Each pass below goes through the batch in chunks (backend.pass_chunks): on the CPU a chunk's
    # centred values and products stay in a core's cache and the chunks run on all cores, so a
    # pass costs one read of the input from main memory. Per-chunk sums are added in chunk order.
    # fused.py runs the same steps with a following ReLU (and 2x2 max-pool) inside each chunk.

    def forward(self, x: Array) -> Array:
        """Input -> normalised, scaled and shifted input of the same shape."""
        self._check(x)
        bc = self._bcast
        mean, inv_std, M = self._statistics(x)
        scale, shift = self._scale_shift(mean, inv_std)
        y = map_batch(self.backend, lambda x: (x * bc(scale) + bc(shift),), (x,), temporaries=1)[0]
        self._cache, self._out_shape = (x, mean, inv_std, self.training, M), x.shape
        return y

    def backward(self, grad_out: Array) -> Array:
        """Gradient w.r.t. the input (same shape); accumulates d gamma and d beta."""
        x, mean, inv_std, training, M = check_grad(self, grad_out, self._out_shape, self._cache)
        return self._input_grad(grad_out, x, mean, inv_std, training, M)

    def _input_grad_whole(self, g: Array, x: Array, mean: Array, inv_std: Array, training: bool, M: int) -> Array:
        """backward on a launch-bound backend: whole-batch operations."""
        return self._input_grad_wide(g, x, mean, inv_std, self.weight.data * inv_std, M, training)

    def _input_grad_chunked(
        self, grad_out: Array, x: Array, mean: Array, inv_std: Array, training: bool, M: int
    ) -> Array:
        """backward elsewhere: chunks of the batch that stay in the CPU's cache."""
        bc = self._bcast
        chunks = self.backend.pass_chunks(x.shape[0], 4 * sample_bytes(self.backend, x))

        def sums(lo: int, hi: int) -> tuple[Array, Array]:
            g = grad_out[lo:hi, ...]
            return self._channel_dot(g, x[lo:hi, ...] - bc(mean)), self._channel_sum(g)

        scale, k, c = self._grad_terms(self.backend.map_chunks(sums, chunks), inv_std, M, training)
        if k is None:  # running statistics are constants: a plain affine map
            return map_batch(self.backend, lambda g: (g * bc(scale),), (grad_out,), temporaries=0)[0]

        def grad(g: Array, x: Array) -> tuple[Array]:
            return (g * bc(scale) - (x - bc(mean)) * bc(k) - bc(c),)

        return map_batch(self.backend, grad, (grad_out, x), temporaries=3)[0]

    def _statistics(self, x: Array) -> tuple[Array, Array, int]:
        """(mean, 1/sqrt(var + eps), values per channel M) of input x: the batch's in training,
        where the running statistics are updated too, the running ones in evaluation."""
        M = math.prod(x.shape) // self.num_features
        if not self.training:
            return self.running_mean, self._inv_std(self.running_var), M
        # synchronised, the statistics span every rank's batch: one value here is enough when there are more there
        if M < 2 and self.sync is None:
            raise ValueError(
                f"{self._name}: training needs more than 1 value per channel, got input shape {tuple(x.shape)}"
            )
        return self._update_running(*self._batch_moments(x, M), M)

    def _moments_whole(self, x: Array, M: int) -> tuple[Array, Array]:
        """The batch's (mean, biased var) per channel on a launch-bound backend."""
        # one reduction each (CuPy's var is two kernels); the chunked moments cost ~12 small operations more
        return self.xp.mean(x, axis=self._axes), self.xp.var(x, axis=self._axes)

    def _moments_chunked(self, x: Array, M: int) -> tuple[Array, Array]:
        """The batch's (mean, biased var) per channel, from chunks that stay in the CPU's cache."""
        bc = self._bcast
        if (fast := self.backend.fused_channel_moments(x)) is not None:  # a compiled pass (NumPy, NCHW)
            return fast
        per_sample = M // x.shape[0]  # values per channel in one sample

        def moments(lo: int, hi: int) -> tuple[Array, Array]:
            # the chunk's own mean and sum of squares about it: one read of the chunk, and no
            # E[x^2] - mean^2, which would cancel badly
            xs = x[lo:hi, ...]
            mu = self._channel_sum(xs) * (1.0 / ((hi - lo) * per_sample))
            xc = xs - bc(mu)
            return mu, self._channel_dot(xc, xc)

        chunks = self.backend.pass_chunks(x.shape[0], 3 * sample_bytes(self.backend, x))
        parts = self.backend.map_chunks(moments, chunks)
        # the chunks' moments combined (Chan, Golub and LeVeque's pairwise formula):
        # mean = sum(n_i mu_i) / M, M * var = sum(M2_i + n_i (mu_i - mean)^2)
        sizes = [(hi - lo) * per_sample for lo, hi in chunks]
        mean = _ordered_sum([mu * n for (mu, _), n in zip(parts, sizes, strict=True)]) * (1.0 / M)
        spread = [m2 + ((mu - mean) ** 2) * n for (mu, m2), n in zip(parts, sizes, strict=True)]
        var = _ordered_sum(spread) * (1.0 / M)
        return mean, var

    def _update_running(self, mean: Array, var: Array, M: int) -> tuple[Array, Array, int]:
        """Batch (mean, biased var) -> (mean, 1/sqrt(var + eps), M), global ones under sync; moves
        the running statistics."""
        if self.sync is not None:
            mean, var, M = self.sync.moments(mean, var, M)
            if M < 2:
                raise ValueError(f"{self._name}: training needs more than 1 value per channel over all ranks")
        m = self.momentum
        self.running_mean = (1.0 - m) * self.running_mean + m * mean
        self.running_var = (1.0 - m) * self.running_var + (m * M / (M - 1)) * var
        return mean, self._inv_std(var), M

    def _inv_std_power(self, var: Array) -> Array:
        """1/sqrt(var + eps), (C,), as one power instead of a root and a division: launches count."""
        return (var + self.eps) ** -0.5

    def _inv_std_root(self, var: Array) -> Array:
        """1/sqrt(var + eps), (C,)."""
        return 1.0 / self.xp.sqrt(var + self.eps)

    def _scale_shift(self, mean: Array, inv_std: Array) -> tuple[Array, Array]:
        """Per-channel (scale, shift) with y = x * scale + shift, (C,) each."""
        # gamma * (x - mean) * inv_std + beta as one multiply-add per value, as PyTorch's CPU
        # kernel does; backward rebuilds x - mean from x, chunk by chunk, instead of keeping it
        scale = self.weight.data * inv_std
        return scale, self.bias.data - mean * scale

    def _grad_terms(
        self, parts: list[tuple[Array, Array]], inv_std: Array, M: int, training: bool
    ) -> tuple[Array, Array | None, Array | None]:
        """From per-chunk (sum(g * (x - mean)), sum(g)) over the batch: accumulates d gamma and
        d beta and returns (scale, k, c), dx = g * scale - (x - mean) * k - c per channel
        (k and c None in evaluation, where dx = g * scale)."""
        dgamma = _ordered_sum([p[0] for p in parts]) * inv_std  # sum(g * xhat)
        dbeta = _ordered_sum([p[1] for p in parts])
        self.weight.add_grad(dgamma)
        self.bias.add_grad(dbeta)
        scale = self.weight.data * inv_std  # (C,)
        if not training:
            return scale, None, None
        if self.sync is not None:  # the input gradient needs the sums over the global batch (M is its size)
            dgamma, dbeta = self.sync.sums(dgamma, dbeta)
        # closed form of dx = (1/M) inv_std (M dxhat - sum dxhat - xhat sum(dxhat xhat)) with
        # dxhat = gamma g, whose sums are gamma * dbeta and gamma * dgamma
        return scale, scale * inv_std * dgamma * (1.0 / M), scale * dbeta * (1.0 / M)

    def _input_grad_wide(
        self, g: Array, x: Array, mean: Array, inv_std: Array, scale: Array, M: int, training: bool
    ) -> Array:
        """The backward of a launch-bound backend, whole batch: gradient w.r.t. x from g (both the
        input's shape), given forward's statistics and scale = gamma * inv_std; accumulates d gamma
        and d beta. The same closed form as _grad_terms, grouped into 13 operations instead of 18."""
        bc = self._bcast
        xc = x - bc(mean)
        dgamma = self._channel_dot(g, xc) * inv_std  # sum(g * xhat)
        dbeta = self._channel_sum(g)
        self.weight.add_grad(dgamma)
        self.bias.add_grad(dbeta)
        if not training:
            return g * bc(scale)
        if self.sync is not None:
            dgamma, dbeta = self.sync.sums(dgamma, dbeta)
        # dx = scale * (g - (xhat * dgamma + dbeta) / M), with xhat * dgamma = xc * (inv_std * dgamma)
        return (g - (xc * bc(inv_std * dgamma) + bc(dbeta)) * (1.0 / M)) * bc(scale)

    def config(self) -> dict[str, Any]:
        return {"type": type(self).__name__.lower(), self._arg: self.num_features, "eps": self.eps,
                "momentum": self.momentum}  # fmt: skip


def _is_real(v: Any) -> bool:
    """A real number (numpy's included), but not a bool."""
    return isinstance(v, Real) and not isinstance(v, bool)


def _ordered_sum(parts: list[Array]) -> Array:
    """parts[0] + parts[1] + ..., always in this order."""
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


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
