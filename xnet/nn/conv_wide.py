"""Conv2D on a launch-bound backend (a GPU): the whole batch in a few large operations.

Each array operation on CuPy is a kernel launch whose fixed cost outweighs its arithmetic at
MNIST scale, so conv.py's im2col (kh*kw block copies, and a col2im of kh*kw slice-adds in
backward) costs dozens of launches a step. Here the windows come from ONE `take` with a
precomputed index over a channel-major (C, N, Hp, Wp) copy of the input, whose rows are in the
weight's own (C_in, kh, kw) order, so that:

forward    pad copy, take, one product (C_out, C*kh*kw) @ (C*kh*kw, N*Ho*Wo), bias add. The
           (C_out, N, Ho, Wo) product is returned as its (N, C_out, Ho, Wo) view, no copy.
backward   the weight gradient is one product of the gradient, as (C_out, N*Ho*Wo), with the
           windows taken again; the input gradient is the transposed convolution: the gradient
           copied at stride steps into a zero-bordered (C_out, N, H + dh(kh-1), W + dw(kw-1))
           buffer, its windows taken with the kernel flipped, and one product with the weight
           as (C_in, C_out*kh*kw).

The batch is cut only where the windows would exceed backend.chunk_bytes (memory, as conv.py
does on a GPU). Results equal conv.py's up to float rounding (tests/nn/test_conv_wide.py).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from xnet.backends import Array, Backend
from xnet.nn.parameter import Parameter
from xnet.nn.windows import Pair


class Conv2D(Protocol):
    """What WideConv reads of its layer (xnet.nn.conv.Conv2D has it): a protocol, so that this
    module, which conv.py imports, imports nothing of conv.py back."""

    backend: Backend
    xp: Any
    kernel_size: Pair
    stride: Pair
    dilation: Pair
    pads: tuple[int, int, int, int]
    groups: int
    out_channels: int
    weight: Parameter
    bias: Parameter | None
    needs_input_grad: bool


def window_index(n: int, hw: Pair, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair, flip: bool) -> np.ndarray:
    """Flat positions in an (n, H, W) block of each window's cells, ordered (kh, kw, n, Ho, Wo).

    `flip` reverses the kernel offsets (kernel cell a reads row (kh-1-a)*dh + i): the windows
    of the transposed convolution, for the weight as it is.
    """
    (kh, kw), (sh, sw), (dh, dw), (Ho, Wo) = kernel, stride, dilation, out_hw
    a, b = np.arange(kh), np.arange(kw)
    if flip:
        a, b = a[::-1], b[::-1]
    rows = a[:, None] * dh + np.arange(Ho) * sh  # (kh, Ho)
    cols = b[:, None] * dw + np.arange(Wo) * sw  # (kw, Wo)
    base = np.arange(n) * (hw[0] * hw[1])
    idx = base[None, None, :, None, None] + rows[:, None, None, :, None] * hw[1] + cols[None, :, None, None, :]
    return idx.reshape(-1)


def _placement(offset: int, step: int, count: int, size: int) -> tuple[slice, slice] | None:
    """(source, target) slices putting items 0..count-1 at offset + i*step, those inside 0..size-1."""
    lo = max(0, -(offset // step)) if offset < 0 else 0
    hi = min(count, (size - 1 - offset) // step + 1) if size - 1 >= offset else 0
    if hi <= lo:
        return None
    start = offset + lo * step
    return slice(lo, hi), slice(start, start + (hi - lo - 1) * step + 1, step)


class WideConv:
    """The launch-bound forward and backward of one Conv2D, with its reused buffers and indices."""

    def __init__(self, layer: Conv2D):
        self.layer = layer
        self._cache: dict[tuple, Array] = {}

    def _cached(self, key: tuple, make: Any) -> Array:
        """cache[key], made by make() on first use; at most a few shapes (full and last batch)."""
        got = self._cache.get(key)
        if got is None:
            if len(self._cache) > 8:
                self._cache.clear()
            got = self._cache[key] = make()
        return got

    def _index(self, n: int, hw: Pair, stride: Pair, out_hw: Pair, flip: bool) -> Array:
        layer = self.layer
        key = ("index", n, hw, stride, out_hw, flip)

        def make() -> Array:
            idx = window_index(n, hw, layer.kernel_size, stride, layer.dilation, out_hw, flip)
            dtype = "int32" if n * hw[0] * hw[1] < 2**31 else "int64"
            return layer.backend.asarray(idx, dtype)

        return self._cached(key, make)

    def _zeros(self, name: str, shape: tuple[int, ...], dtype: Any) -> Array:
        """A buffer of `shape` whose border stays zero: each step writes the same interior."""
        return self._cached((name, shape, dtype), lambda: self.layer.backend.zeros(shape, dtype))

    def _windows(self, xpad: Array, lo: int, hi: int, out_hw: Pair) -> Array:
        """Samples lo..hi of the (C, N, Hp, Wp) input -> (G, C/G*kh*kw, n*Ho*Wo) windows."""
        layer, xp = self.layer, self.layer.xp
        C, Hp, Wp = xpad.shape[0], xpad.shape[2], xpad.shape[3]
        n, G, (kh, kw) = hi - lo, layer.groups, layer.kernel_size
        block = xp.reshape(xpad[:, lo:hi, ...], (C, n * Hp * Wp))
        cols = xp.take(block, self._index(n, (Hp, Wp), layer.stride, out_hw, False), axis=1)
        return xp.reshape(cols, (G, C // G * kh * kw, n * out_hw[0] * out_hw[1]))

    def _chunks(self, N: int, per_sample: int, dtype: Any) -> list[tuple[int, int]]:
        layer = self.layer
        return layer.backend.batch_chunks(N, per_sample * (layer.xp.finfo(dtype).bits // 8))

    def forward(self, x: Array, out_hw: Pair) -> Array:
        """(N, C_in, H, W) -> (N, C_out, Ho, Wo), a view of a (C_out, N, Ho, Wo) array."""
        layer, xp = self.layer, self.layer.xp
        N, C, H, W = x.shape
        (pt, pb, pl, pr), G, Co = layer.pads, layer.groups, layer.out_channels
        (kh, kw), L = layer.kernel_size, out_hw[0] * out_hw[1]
        xpad = self._zeros("x", (C, N, H + pt + pb, W + pl + pr), x.dtype)
        xpad[:, :, pt : pt + H, pl : pl + W] = xp.permute_dims(x, (1, 0, 2, 3))
        self.xpad = xpad
        wmat = xp.reshape(layer.weight.data, (G, Co // G, C // G * kh * kw))
        bias = None if layer.bias is None else xp.reshape(layer.bias.data, (G, Co // G, 1))
        chunks = self._chunks(N, max(C * kh * kw, Co) * L, x.dtype)
        out = None if len(chunks) == 1 else layer.backend.empty((Co, N, L), x.dtype)
        for lo, hi in chunks:
            y = _matmul(xp, wmat, self._windows(xpad, lo, hi, out_hw))  # (G, C_out/G, n*L)
            if bias is not None:
                y += bias
            if out is None:
                out = xp.reshape(y, (Co, N, L))
            else:
                out[:, lo:hi, :] = xp.reshape(y, (Co, hi - lo, L))
        return xp.permute_dims(xp.reshape(out, (Co, N, *out_hw)), (1, 0, 2, 3))

    def backward(self, g: Array, x_shape: tuple[int, ...]) -> Array | None:
        """(N, C_out, Ho, Wo) -> (N, C_in, H, W) (None without input gradient); accumulates dW, db."""
        layer, xp = self.layer, self.layer.xp
        N, Co, Ho, Wo = g.shape
        C, H, W = x_shape[1], x_shape[2], x_shape[3]
        G, (kh, kw), (dh, dw) = layer.groups, layer.kernel_size, layer.dilation
        need_dx = layer.needs_input_grad
        # (N, C_out, Ho, Wo) -> (C_out, N, Ho, Wo): a view when the gradient is already laid out
        # so (from this layer's own output), else the one copy both products need
        gt = xp.reshape(xp.permute_dims(g, (1, 0, 2, 3)), (G, Co // G, N, Ho * Wo))
        per_sample = max(C * kh * kw * Ho * Wo, Co * kh * kw * H * W if need_dx else 0)
        chunks = self._chunks(N, per_sample, g.dtype)
        if need_dx:
            Hg, Wg = H + dh * (kh - 1), W + dw * (kw - 1)
            gpad = self._zeros("g", (Co, N, Hg, Wg), g.dtype)
            rows = _placement(dh * (kh - 1) - layer.pads[0], layer.stride[0], Ho, Hg)
            cols = _placement(dw * (kw - 1) - layer.pads[2], layer.stride[1], Wo, Wg)
            if rows is None or cols is None:  # every output reads padding only
                need_dx = False
            else:
                src = xp.reshape(gt, (Co, N, Ho, Wo))[:, :, rows[0], cols[0]]
                gpad[:, :, rows[1], cols[1]] = src
                # weight (C_out, C/G, kh, kw) -> (G, C/G, C_out/G * kh*kw): input channels by
                # (output channel, kernel cell), the transposed convolution's matrix (a small copy)
                w = xp.reshape(layer.weight.data, (G, Co // G, C // G, kh * kw))
                wt = xp.reshape(xp.permute_dims(w, (0, 2, 1, 3)), (G, C // G, Co // G * kh * kw))
                dx = None if len(chunks) == 1 else layer.backend.empty((C, N, H * W), g.dtype)
        dw_total = None
        for lo, hi in chunks:
            n = hi - lo
            gm = xp.reshape(gt[:, :, lo:hi, :], (G, Co // G, n * Ho * Wo))
            part = _matmul(xp, gm, self._windows(self.xpad, lo, hi, (Ho, Wo)), transpose_b=True)
            dw_total = part if dw_total is None else dw_total + part
            if not need_dx:
                continue
            block = xp.reshape(gpad[:, lo:hi, ...], (Co, n * Hg * Wg))
            gcols = xp.take(block, self._index(n, (Hg, Wg), (1, 1), (H, W), True), axis=1)
            d = _matmul(xp, wt, xp.reshape(gcols, (G, Co // G * kh * kw, n * H * W)))  # (G, C/G, n*H*W)
            if dx is None:
                dx = xp.reshape(d, (C, N, H * W))
            else:
                dx[:, lo:hi, :] = xp.reshape(d, (C, n, H * W))
        layer.weight.add_grad(xp.reshape(dw_total, tuple(layer.weight.data.shape)))
        if layer.bias is not None:
            layer.bias.add_grad(xp.reshape(xp.sum(gt, axis=(2, 3)), (Co,)))
        if not layer.needs_input_grad:
            return None
        if not need_dx:
            return layer.backend.zeros(tuple(x_shape), g.dtype)
        return xp.permute_dims(xp.reshape(dx, (C, N, H, W)), (1, 0, 2, 3))


def _matmul(xp: Any, a: Array, b: Array, transpose_b: bool = False) -> Array:
    """(G, m, k) @ (G, k, n), or @ (G, n, k) transposed, -> (G, m, n).

    One group goes through 2-D products: CuPy's batched matmul copies a transposed operand
    first, its 2-D product hands the transpose to cuBLAS.
    """
    if a.shape[0] == 1:
        b2 = b[0, ...]
        y = a[0, ...] @ (xp.matrix_transpose(b2) if transpose_b else b2)
        return xp.reshape(y, (1, *y.shape))
    return a @ (xp.matrix_transpose(b) if transpose_b else b)
