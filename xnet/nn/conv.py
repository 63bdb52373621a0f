"""Conv2D: 2-D convolution (cross-correlation, as in PyTorch) on NCHW images via im2col."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xnet.backends import Array
from xnet.nn.init import initialize
from xnet.nn.module import Module
from xnet.nn.parameter import Parameter
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

# Outside training, forward runs the batch in chunks whose windows hold at most this many
# elements, so evaluating 10 000 images does not build a multi-GB im2col matrix.
EVAL_CHUNK_ELEMENTS = 1 << 24


class Conv2D(Module):
    """2-D convolution: (N, C_in, H, W) -> (N, C_out, Ho, Wo), weight (C_out, C_in/groups, kh, kw).

    `padding` is an int, a pair, "valid" (0) or "same" (stride 1 only; output H, W = input H, W,
    the odd extra row/column of padding going bottom/right as in PyTorch). `groups` splits the
    channels into independent convolutions; groups == in_channels is a depthwise convolution.
    `needs_input_grad = False` (set by a Sequential whose input is data) makes backward skip
    the input gradient (a matrix product and col2im) and return None.
    """

    needs_input_grad = True

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
        bias_init: str | Callable = "zeros",
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
        self._reset_cache()

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
        self._cols: Array | None = None  # (G, kh*kw*C_in/G, N*Ho*Wo), this forward's windows
        self._xpad_buf: Array | None = None  # reused between training steps
        self._cols_buf: Array | None = None

    def _on_backend_change(self) -> None:
        self._reset_cache()

    # -- computation ------------------------------------------------------------------------------

    def _weight_matrix(self) -> Array:
        """(C_out, C_in/G, kh, kw) -> (G, C_out/G, kh*kw*C_in/G), matching the window layout."""
        G, (kh, kw) = self.groups, self.kernel_size
        Cog, Cg = self.out_channels // G, self.in_channels // G
        w = self.xp.reshape(self.weight.data, (G, Cog, Cg, kh, kw))
        return self.xp.reshape(self.xp.permute_dims(w, (0, 1, 3, 4, 2)), (G, Cog, kh * kw * Cg))

    def _windows(self, x: Array, out_hw: tuple[int, int], reuse: bool) -> Array:
        """(N, C_in, H, W) -> (G, kh*kw*C_in/G, N*Ho*Wo) im2col matrix."""
        xpad = pad_into(self.backend, x, self.pads, 0.0, self._xpad_buf if reuse else None)
        cols = im2col(
            self.backend, xpad, self.kernel_size, self.stride, self.dilation, out_hw,
            self.groups, self._cols_buf if reuse else None,
        )  # fmt: skip
        if reuse:
            self._xpad_buf = xpad if xpad is not x else None
            self._cols_buf = cols
        N, G, (kh, kw) = x.shape[0], self.groups, self.kernel_size
        K = kh * kw * (self.in_channels // G)
        return self.xp.reshape(cols, (G, K, N * out_hw[0] * out_hw[1]))

    def forward(self, x: Array) -> Array:
        """(N, C_in, H, W) -> (N, C_out, Ho, Wo), Ho = (H + pad - dil*(kh-1) - 1)//stride + 1."""
        check_nchw(self._name, x, self.in_channels)
        out_hw = output_hw(
            self._name, tuple(x.shape), self.kernel_size, self.stride, self.dilation, self.pads
        )
        self._x = x
        wmat = self._weight_matrix()
        N = x.shape[0]
        if self.training:
            self._cols = self._windows(x, out_hw, reuse=True)
            return self._output(self.backend.matmul(wmat, self._cols), N, out_hw)
        # inference: no cache, batch chunks bounded in memory (backward recomputes the windows)
        self._cols = None
        per_sample = (
            self.in_channels * self.kernel_size[0] * self.kernel_size[1] * out_hw[0] * out_hw[1]
        )
        step = max(1, EVAL_CHUNK_ELEMENTS // per_sample)
        parts = []
        for lo in range(0, N, step):
            hi = min(lo + step, N)
            chunk = x if hi - lo == N else x[lo:hi, ...]
            y = self.backend.matmul(wmat, self._windows(chunk, out_hw, False))
            parts.append(self._output(y, hi - lo, out_hw))
        return parts[0] if len(parts) == 1 else self.xp.concat(parts, axis=0)

    def _output(self, y: Array, N: int, out_hw: tuple[int, int]) -> Array:
        """(G, C_out/G, N*Ho*Wo) matrix product -> (N, C_out, Ho, Wo) plus bias."""
        xp, C, L = self.xp, self.out_channels, out_hw[0] * out_hw[1]
        y = xp.reshape(y, (C, N * L))
        if self.bias is not None:
            y += xp.reshape(self.bias.data, (C, 1))
        # (C_out, N, L) -> (N, C_out, L): reshaping the transposed view makes one NCHW copy
        y = xp.reshape(xp.permute_dims(xp.reshape(y, (C, N, L)), (1, 0, 2)), (N, C * L))
        return xp.reshape(y, (N, C, out_hw[0], out_hw[1]))

    def backward(self, grad_out: Array) -> Array | None:
        """(N, C_out, Ho, Wo) -> (N, C_in, H, W); accumulates weight and bias gradients."""
        x = self._cached(self._x)
        xp, G, (kh, kw) = self.xp, self.groups, self.kernel_size
        N, Ho, Wo = grad_out.shape[0], grad_out.shape[2], grad_out.shape[3]
        cols = self._cols if self._cols is not None else self._windows(x, (Ho, Wo), reuse=False)
        Cog, Cg, L = self.out_channels // G, self.in_channels // G, Ho * Wo
        # (N, C_out, Ho, Wo) -> (G, C_out/G, N*Ho*Wo), the layout of the windows: one copy
        gt = xp.permute_dims(xp.reshape(grad_out, (N, self.out_channels, L)), (1, 0, 2))
        gt = xp.reshape(gt, (G, Cog, N * L))

        # dW = g . windows^T, from window order (kh, kw, Cg) back to (Cg, kh, kw)
        dw = self.backend.matmul(gt, xp.matrix_transpose(cols))  # (G, Cog, kh*kw*Cg)
        dw = xp.permute_dims(xp.reshape(dw, (G, Cog, kh, kw, Cg)), (0, 1, 4, 2, 3))
        self.weight.grad += xp.reshape(dw, tuple(self.weight.data.shape))
        if self.bias is not None:
            self.bias.grad += xp.reshape(xp.sum(gt, axis=2), (self.out_channels,))
        if not self.needs_input_grad:
            return None

        # (G, kh*kw*Cg, Cog) @ (G, Cog, N*Ho*Wo) -> (G, kh*kw*Cg, N*Ho*Wo)
        dcols = self.backend.matmul(xp.matrix_transpose(self._weight_matrix()), gt)
        dcols = xp.reshape(dcols, (G, kh, kw, Cg, N, Ho, Wo))
        H, W = x.shape[2], x.shape[3]
        padded = (H + self.pads[0] + self.pads[1], W + self.pads[2] + self.pads[3])
        dx = col2im(self.backend, dcols, padded, self.kernel_size, self.stride, self.dilation)
        dx = xp.permute_dims(crop(dx, self.pads), (1, 0, 2, 3))  # (C_in, N, H, W) -> NCHW view
        # reshaping the transposed view makes one contiguous NCHW copy
        return xp.reshape(xp.reshape(dx, (N, self.in_channels * H * W)), (N, self.in_channels, H, W))

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
