"""Global and adaptive average pooling: (N, C, H, W) -> (N, C) or (N, C, oh, ow) for any H, W."""

from __future__ import annotations

from typing import Any

import numpy as np

from xnet.backends import Array
from xnet.nn.checks import check_grad
from xnet.nn.module import Module
from xnet.nn.windows import check_nchw, pair


class GlobalAvgPool2D(Module):
    """Mean over H and W: (N, C, H, W) -> (N, C), or (N, C, 1, 1) with keepdims (as Keras)."""

    def __init__(self, keepdims: bool = False):
        super().__init__()
        self.keepdims = bool(keepdims)
        self._in_shape: tuple[int, ...] | None = None
        self._out_shape: tuple[int, ...] | None = None

    def forward(self, x: Array) -> Array:
        """(N, C, H, W) -> (N, C) [or (N, C, 1, 1)]."""
        check_nchw("GlobalAvgPool2D", x)
        y = self.xp.mean(x, axis=(2, 3), keepdims=self.keepdims)
        self._in_shape, self._out_shape = tuple(x.shape), tuple(y.shape)
        return y

    def backward(self, grad_out: Array) -> Array:
        """(N, C) [or (N, C, 1, 1)] -> (N, C, H, W): each pixel gets g / (H W)."""
        n, c, h, w = check_grad(self, grad_out, self._out_shape, self._in_shape)
        g = self.xp.reshape(grad_out, (n, c, 1, 1)) * (1.0 / (h * w))
        return self.xp.broadcast_to(g, (n, c, h, w)) + 0.0  # a real array, not a read-only view

    def config(self) -> dict[str, Any]:
        return {"type": "globalavgpool2d", **({"keepdims": True} if self.keepdims else {})}


def bin_matrix(size: int, out: int) -> np.ndarray:
    """(out, size): row i averages input rows floor(i*size/out) .. ceil((i+1)*size/out) - 1 (PyTorch's bins)."""
    m = np.zeros((out, size))
    for i in range(out):
        lo, hi = (i * size) // out, -((-(i + 1) * size) // out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


class AdaptiveAvgPool2D(Module):
    """(N, C, H, W) -> (N, C, oh, ow): each output cell the mean of its bin (bins may overlap).

    Pooling is separable, so y = A_h x A_w^T with the bin-averaging matrices A (bin_matrix):
    two matrix products forward, their transposes backward.
    """

    def __init__(self, output_size: int | tuple[int, int]):
        super().__init__()
        self.output_size = pair(output_size, "output_size", "AdaptiveAvgPool2D")
        self._mats: dict[tuple[int, int], tuple[Array, Array]] = {}
        self._key: tuple[int, int] | None = None
        self._in_shape: tuple[int, ...] | None = None
        self._out_shape: tuple[int, ...] | None = None

    def _on_backend_change(self) -> None:
        self._mats = {}

    def _matrices(self, h: int, w: int) -> tuple[Array, Array]:
        """(A_h (oh, H), A_w^T (W, ow)) on this backend, made once per input size."""
        if (h, w) not in self._mats:
            oh, ow = self.output_size
            a_h = self.backend.asarray(bin_matrix(h, oh), self.dtype)
            a_wt = self.backend.asarray(np.ascontiguousarray(bin_matrix(w, ow).T), self.dtype)
            self._mats[(h, w)] = (a_h, a_wt)
        return self._mats[(h, w)]

    def forward(self, x: Array) -> Array:
        """(N, C, H, W) -> (N, C, oh, ow)."""
        check_nchw(f"AdaptiveAvgPool2D(output_size={self.output_size})", x)
        a_h, a_wt = self._matrices(x.shape[2], x.shape[3])
        y = self.xp.matmul(a_h, self.xp.matmul(x, a_wt))
        self._in_shape, self._out_shape = tuple(x.shape), tuple(y.shape)
        return y

    def backward(self, grad_out: Array) -> Array:
        """(N, C, oh, ow) -> (N, C, H, W): A_h^T g A_w."""
        shape = check_grad(self, grad_out, self._out_shape, self._in_shape)
        a_h, a_wt = self._matrices(shape[2], shape[3])
        return self.xp.matmul(self.xp.matmul(a_h.T, grad_out), a_wt.T)

    def config(self) -> dict[str, Any]:
        return {"type": "adaptiveavgpool2d", "output_size": list(self.output_size)}


__all__ = ["AdaptiveAvgPool2D", "GlobalAvgPool2D", "bin_matrix"]
