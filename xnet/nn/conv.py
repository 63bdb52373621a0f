"""Conv2D: 2-D convolution (cross-correlation, as in PyTorch) on NCHW images via im2col.

Past 300 lines as one class: its im2col forward and backward run in chunks over the backend's
worker threads with buffers kept per worker; the launch-bound (GPU) path is in conv_wide.py, the windows in windows.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from xnet.backends import Array
from xnet.nn.checks import check_grad
from xnet.nn.conv_wide import WideConv
from xnet.nn.init import default_bias_init, initialize
from xnet.nn.module import Module
from xnet.nn.parameter import Parameter
from xnet.nn.shapes import check_given, sample_size
from xnet.nn.windows import (
    Pads,
    check_nchw,
    col2im,
    compact,
    crop,
    im2col,
    output_hw,
    pad_into,
    pair,
    same_pads,
)


class Conv2D(Module):
    """2-D convolution: (N, C_in, H, W) -> (N, C_out, Ho, Wo), weight (C_out, C_in/groups, kh, kw).

    `padding` is an int, a pair, "valid" (0) or "same" (stride 1 only; output H, W = input H, W,
    the odd extra row/column of padding going bottom/right as in PyTorch). `groups` splits the
    channels into independent convolutions; groups == in_channels is a depthwise convolution.
    `needs_input_grad = False` (set by a Sequential whose input is data) makes backward skip
    the input gradient (a matrix product and col2im) and return None.
    """

    needs_input_grad = True
    sample_rank = 3  # its samples are images: (in_channels, H, W)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        init: str | Callable = "kaiming_uniform",
        bias_init: str | Callable | None = None,
    ):
        super().__init__()
        for name, v in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("groups", groups),
        ):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"Conv2D: {name} must be a positive int, got {v!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        name = self._name = f"Conv2D(in_channels={in_channels})"
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: groups={groups} must divide both in_channels={in_channels} and "
                f"out_channels={out_channels}"
            )
        self.kernel_size = pair(kernel_size, "kernel_size", name)
        self.stride = pair(stride, "stride", name)
        self.dilation = pair(dilation, "dilation", name)
        self.padding = self._parse_padding(padding)
        bias_init = default_bias_init(init) if bias_init is None else bias_init  # zeros unless init="torch"
        self.init, self.bias_init = init, bias_init

        kh, kw = self.kernel_size
        shape = (out_channels, in_channels // groups, kh, kw)
        fan_in, fan_out = in_channels // groups * kh * kw, out_channels // groups * kh * kw
        self.weight = Parameter(
            initialize(init, self.backend, shape, fan_in, fan_out, self.dtype), "weight"
        )
        self.bias = (
            Parameter(
                initialize(bias_init, self.backend, (out_channels,), fan_in, fan_out, self.dtype),
                "bias",
                regularize=False,
            )
            if bias
            else None
        )
        self._on_backend_change()

    def _parse_padding(self, padding: Any) -> int | tuple[int, int] | str:
        """Sets self.pads (top, bottom, left, right); returns padding as given, normalised."""
        if isinstance(padding, str):
            mode = padding.lower()
            if mode == "valid":
                self.pads: Pads = (0, 0, 0, 0)
            elif mode == "same":
                if self.stride != (1, 1):
                    raise ValueError(
                        f"{self._name}: padding='same' is not supported for strided convolutions "
                        f"(stride {self.stride}), as in PyTorch; give the padding as numbers"
                    )
                self.pads = same_pads(self.kernel_size, self.dilation)
            else:
                raise ValueError(
                    f"{self._name}: padding must be an int, a pair, 'same' or 'valid', "
                    f"got {padding!r}"
                )
            return mode
        ph, pw = pair(padding, "padding", self._name, minimum=0)
        self.pads = (ph, ph, pw, pw)
        return (ph, pw)

    def _reset_cache(self) -> None:
        self._x: Array | None = None
        self._out_shape: tuple[int, ...] | None = None  # checked against backward's gradient
        self._xpad: Array | None = None  # this forward's padded input (x itself without padding)
        self._pad_buf: Array | None = None  # reused between steps: its border stays zero
        self._scratch: dict[int, dict[str, Array]] = {}  # per worker thread: flat work buffers
        self._wide: WideConv | None = None  # the launch-bound path's buffers (conv_wide.py)
        self._direct = False  # whether forward ran a compiled convolution (direct, or Winograd's for wider 3x3)

    def _on_backend_change(self) -> None:
        self._reset_cache()
        # the formulation, chosen once per backend: a few whole-batch operations where every
        # operation is a kernel launch (launch_bound: conv_wide.py), cache-sized chunks elsewhere
        wide = self.backend.launch_bound
        self._forward_on = self._forward_wide if wide else self._forward_chunked
        self._backward_on = self._backward_wide if wide else self._backward_chunked

    # -- computation ------------------------------------------------------------------------------
    #
    # The batch is cut into chunks (backend.batch_chunks): on the CPU each chunk's window matrix
    # fits a core's cache, so building it, multiplying it and adding it back never waits on main
    # memory, and the chunks run on all cores (backend.run_chunks). The windows are built again in
    # backward instead of being kept: cheap from cache, and no large matrix lives between passes.
    # A launch-bound backend (a GPU) runs conv_wide.py instead: a few whole-batch operations.

    def _weight_matrix(self) -> Array:
        """(C_out, C_in/G, kh, kw) -> (G, C_out/G, kh*kw*C_in/G), matching the window layout."""
        G, (kh, kw) = self.groups, self.kernel_size
        Cog, Cg = self.out_channels // G, self.in_channels // G
        w = self.xp.reshape(self.weight.data, (G, Cog, Cg, kh, kw))
        return self.xp.reshape(self.xp.permute_dims(w, (0, 1, 3, 4, 2)), (G, Cog, kh * kw * Cg))

    def _buffer(self, worker: int, name: str, shape: tuple[int, ...], dtype: Any) -> Array:
        """A per-worker scratch array of `shape`, reused from step to step (contents undefined)."""
        size = math.prod(shape)
        bufs = self._scratch.setdefault(worker, {})
        flat = bufs.get(name)
        if flat is None or flat.shape[0] < size or flat.dtype != dtype:
            flat = bufs[name] = self.backend.empty((size,), dtype)
        return self.xp.reshape(flat[:size], shape)

    def _windows(self, lo: int, hi: int, out_hw: tuple[int, int], worker: int) -> Array:
        """Samples lo..hi of the padded input -> (G, kh*kw*C_in/G, n*Ho*Wo) window matrix."""
        xpad, G, (kh, kw) = self._xpad, self.groups, self.kernel_size
        n, Cg = hi - lo, self.in_channels // G
        buf = self._buffer(worker, "cols", (G, kh, kw, Cg, n, *out_hw), xpad.dtype)
        cols = im2col(
            self.backend, xpad[lo:hi, ...], self.kernel_size, self.stride, self.dilation, out_hw,
            G, buf,
        )  # fmt: skip
        return self.xp.reshape(cols, (G, kh * kw * Cg, n * out_hw[0] * out_hw[1]))

    def _chunks(self, N: int, out_hw: tuple[int, int]) -> list[tuple[int, int]]:
        """Batch ranges whose window matrices, and outputs, fit the backend's chunk size."""
        kh, kw = self.kernel_size
        itemsize = self.xp.finfo(self.weight.data.dtype).bits // 8
        # a first layer (1 input channel, 32 outputs) has outputs 3.5x larger than its windows:
        # sized by the windows alone, its output chunks missed the cache (forward 1.4 -> 1.15 ms
        # for (128, 1, 28, 28) -> 32 channels once sized by the larger of the two)
        rows = max(self.in_channels * kh * kw, self.out_channels)
        return self.backend.batch_chunks(N, rows * out_hw[0] * out_hw[1] * itemsize)

    def check_input_shape(self, shape: tuple[int, ...], where: str) -> None:
        """ValueError unless `shape` is (in_channels, H, W)."""
        check_given("in_channels", self.in_channels, sample_size(shape, self.sample_rank, where), shape, where)

    def forward(self, x: Array) -> Array:
        """(N, C_in, H, W) -> (N, C_out, Ho, Wo), Ho = (H + pad - dil*(kh-1) - 1)//stride + 1."""
        check_nchw(self._name, x, self.in_channels)
        out_hw = output_hw(
            self._name, tuple(x.shape), self.kernel_size, self.stride, self.dilation, self.pads
        )
        self._x = x
        return self._forward_on(x, out_hw)

    def _forward_wide(self, x: Array, out_hw: tuple[int, int]) -> Array:
        """forward on a launch-bound backend (a GPU): a few whole-batch operations (conv_wide.py)."""
        self._wide = self._wide or WideConv(self)
        y = self._wide.forward(x, out_hw)
        self._out_shape = tuple(y.shape)
        return y

    def _forward_chunked(self, x: Array, out_hw: tuple[int, int]) -> Array:
        """forward elsewhere: chunks of the batch whose window matrices stay in the CPU's cache."""
        xp, N, C, L = self.xp, x.shape[0], self.out_channels, out_hw[0] * out_hw[1]
        self._xpad = pad_into(self.backend, x, self.pads, 0.0, self._pad_buf)
        if self._xpad is not x:
            self._pad_buf = self._xpad
        y = self.backend.fused_conv2d(
            self._xpad, self.weight.data, None if self.bias is None else self.bias.data,
            self.stride, self.dilation, self.groups, out_hw,
        )  # fmt: skip
        # the NumPy backend's compiled forward: direct (few channels) or Winograd F(2x2, 3x3); backward
        # tries the direct one's kernel and otherwise runs the im2col body below
        self._direct = y is not None
        if self._direct:
            self._out_shape = tuple(y.shape)
            return y
        wmat = self._weight_matrix()
        out = self.backend.empty((N, C, L), x.dtype)
        G = self.groups
        bias = None if self.bias is None else xp.reshape(self.bias.data, (G, C // G, 1))
        chunks = self._chunks(N, out_hw)

        def run(chunk: int, worker: int) -> None:
            lo, hi = chunks[chunk]
            y = wmat @ self._windows(lo, hi, out_hw, worker)  # (G, C_out/G, n*L)
            if bias is not None:  # added to the fresh product, in order: cheaper than to `out`
                y += bias
            # (C_out, n, L) -> (n, C_out, L): the transposed view is written into NCHW order
            out[lo:hi, ...] = xp.permute_dims(xp.reshape(y, (C, hi - lo, L)), (1, 0, 2))

        self.backend.run_chunks(run, len(chunks))
        self._out_shape = (N, C, *out_hw)
        return xp.reshape(out, self._out_shape)

    def backward(self, grad_out: Array) -> Array | None:
        """(N, C_out, Ho, Wo) -> (N, C_in, H, W); accumulates weight and bias gradients."""
        x = check_grad(self, grad_out, self._out_shape, self._x)
        return self._backward_on(grad_out, x)

    def _backward_wide(self, grad_out: Array, x: Array) -> Array | None:
        """backward on a launch-bound backend (conv_wide.py)."""
        return self._wide.backward(grad_out, tuple(x.shape))

    def _backward_chunked(self, grad_out: Array, x: Array) -> Array | None:
        """backward elsewhere, chunk by chunk as forward."""
        if self._direct:
            parts = self.backend.fused_conv2d_backward(
                self._xpad, self.weight.data, grad_out, self.pads, tuple(x.shape), self.needs_input_grad
            )
            if parts is not None:
                dx, dw, db = parts
                self.weight.add_grad(dw)
                if self.bias is not None:
                    self.bias.add_grad(db)
                return dx
        xp, G, (kh, kw) = self.xp, self.groups, self.kernel_size
        N, Ho, Wo = grad_out.shape[0], grad_out.shape[2], grad_out.shape[3]
        Cog, Cg, L, K = self.out_channels // G, self.in_channels // G, Ho * Wo, kh * kw * self.in_channels // G
        g = xp.reshape(grad_out, (N, self.out_channels, L))
        chunks = self._chunks(N, (Ho, Wo))
        # per-chunk weight and bias gradients, summed in chunk order afterwards: the result does
        # not depend on which thread ran which chunk
        dw_parts = self.backend.empty((len(chunks), G, K, Cog), grad_out.dtype)
        db_parts = self.backend.empty((len(chunks), G, Cog), grad_out.dtype)
        wmat_t = xp.matrix_transpose(self._weight_matrix())  # (G, K, Cog)
        H, W = x.shape[2], x.shape[3]
        padded = (H + self.pads[0] + self.pads[1], W + self.pads[2] + self.pads[3])
        dx = self.backend.empty(tuple(x.shape), x.dtype) if self.needs_input_grad else None

        def run(chunk: int, worker: int) -> None:
            lo, hi = chunks[chunk]
            n = hi - lo
            cols = self._windows(lo, hi, (Ho, Wo), worker)
            # (n, C_out, L) -> (G, C_out/G, n*L), the windows' layout (no copy when n == 1)
            gt = xp.reshape(xp.permute_dims(g[lo:hi, ...], (1, 0, 2)), (G, Cog, n * L))
            dw_parts[chunk, ...] = cols @ xp.matrix_transpose(gt)  # (G, K, C_out/G)
            db_parts[chunk, ...] = xp.sum(gt, axis=2)
            if dx is None:
                return
            dcols = xp.reshape(wmat_t @ gt, (G, kh, kw, Cg, n, Ho, Wo))
            acc = self._buffer(worker, "dxpad", (G * Cg, n, *padded), dx.dtype)
            col2im(self.backend, dcols, acc, self.kernel_size, self.stride, self.dilation)
            dx[lo:hi, ...] = xp.permute_dims(crop(acc, self.pads), (1, 0, 2, 3))

        self.backend.run_chunks(run, len(chunks))
        # window order (kh, kw, Cg) back to the weight's (C_out, Cg, kh, kw)
        dw = xp.reshape(xp.sum(dw_parts, axis=0), (G, kh, kw, Cg, Cog))
        dw = xp.permute_dims(dw, (0, 4, 3, 1, 2))
        self.weight.add_grad(xp.reshape(dw, tuple(self.weight.data.shape)))
        if self.bias is not None:
            self.bias.add_grad(xp.reshape(xp.sum(db_parts, axis=0), (self.out_channels,)))
        return dx

    # -- description -------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "type": "conv2d",
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": compact(self.kernel_size),
            "stride": compact(self.stride),
            "padding": self.padding if isinstance(self.padding, str) else compact(self.padding),
            "dilation": compact(self.dilation),
            "groups": self.groups,
            "bias": self.bias is not None,
        }
        if isinstance(self.init, str):
            cfg["init"] = self.init
        if isinstance(self.bias_init, str):
            cfg["bias_init"] = self.bias_init
        return cfg
