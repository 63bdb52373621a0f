"""MaxPool2D and AvgPool2D over NCHW images.

Both loop over the kh*kw window offsets, each step one strided slice of the whole batch, so no
window matrix is built. Non-overlapping 2x2 pooling (the usual CNN case) has a faster path that
views the input as (N, C, H/2, 2, W/2, 2).
"""

from __future__ import annotations

from typing import Any

from xnet.backends import Array
from xnet.nn.batched import sample_bytes
from xnet.nn.checks import check_grad
from xnet.nn.module import Module
from xnet.nn.quads import cell_codes, max_of_quads, quad_codes, route_by_codes, route_to_winners
from xnet.nn.windows import (
    Pair,
    check_nchw,
    compact,
    crop,
    output_hw,
    pad_into,
    pair,
    window_slices,
)


class _Pool2D(Module):
    """Shared argument handling and shape checks of the pooling layers."""

    kind = "pool2d"
    pad_value = 0.0

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
    ):
        super().__init__()
        cls = type(self).__name__
        self._name = f"{cls}(kernel_size={kernel_size!r})"
        self.kernel_size = pair(kernel_size, "kernel_size", self._name)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", self._name)
        self.padding = pair(padding, "padding", self._name, minimum=0)
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError(
                f"{self._name}: padding {self.padding} must be at most half the kernel size "
                f"{self.kernel_size} (as in PyTorch), or whole windows would lie in the padding"
            )
        ph, pw = self.padding
        self.pads = (ph, ph, pw, pw)
        self._out_shape: tuple[int, ...] | None = None  # checked against backward's gradient
        self._on_backend_change()

    def _on_backend_change(self) -> None:
        self._x: Array | None = None
        self._pad_buf: Array | None = None
        self._codes: Array | None = None

    def _cell_codes(self) -> Array:
        """cell_codes on this layer's backend, made once."""
        if self._codes is None:
            self._codes = cell_codes(self.backend)
        return self._codes

    def _fast(self) -> bool:
        """Non-overlapping 2x2 windows without padding: the reshape path."""
        return self.kernel_size == (2, 2) and self.stride == (2, 2) and self.padding == (0, 0)

    def _prepare(self, x: Array) -> tuple[Array, Pair]:
        """Checks x; returns the padded input and (Ho, Wo)."""
        check_nchw(self._name, x)
        out_hw = output_hw(
            self._name, tuple(x.shape), self.kernel_size, self.stride, (1, 1), self.pads
        )
        xpad = pad_into(self.backend, x, self.pads, self.pad_value, self._pad_buf)
        if xpad is not x:
            self._pad_buf = xpad
        return xpad, out_hw

    def _quads(self, x: Array) -> tuple[Array, Pair]:
        """(N, C, H, W) -> (N, C, H/2, 2, W/2, 2) view (odd last row/column dropped), (Ho, Wo)."""
        check_nchw(self._name, x)
        N, C, H, W = x.shape
        Ho, Wo = output_hw(self._name, (N, C, H, W), (2, 2), (2, 2), (1, 1), (0, 0, 0, 0))
        if H % 2 or W % 2:
            x = x[:, :, : 2 * Ho, : 2 * Wo]
        return self.xp.reshape(x, (N, C, Ho, 2, Wo, 2)), (Ho, Wo)

    def _grad_input(self, grad6: Array, shape: tuple[int, ...]) -> Array:
        """(N, C, Ho, 2, Wo, 2) gradient -> `shape` (N, C, H, W), zeros in a dropped odd row/column."""
        N, C, H, W = shape
        Ho, Wo = grad6.shape[2], grad6.shape[4]
        dx = self.xp.reshape(grad6, (N, C, 2 * Ho, 2 * Wo))
        if (2 * Ho, 2 * Wo) == (H, W):
            return dx
        full = self.backend.zeros((N, C, H, W), dx.dtype)
        full[:, :, : 2 * Ho, : 2 * Wo] = dx
        return full

    def _padded_shape(self, x: Array) -> Pair:
        return x.shape[2] + 2 * self.padding[0], x.shape[3] + 2 * self.padding[1]

    def config(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "kernel_size": compact(self.kernel_size),
            "stride": compact(self.stride),
            "padding": compact(self.padding),
        }


class MaxPool2D(_Pool2D):
    """Max over each window: (N, C, H, W) -> (N, C, Ho, Wo); padding counts as -inf.

    The gradient of a window goes to exactly one position, its first maximum in row-major
    order (ties included), like argmax.
    """

    kind = "maxpool2d"
    pad_value = float("-inf")

    def _on_backend_change(self) -> None:
        super()._on_backend_change()
        # the 2x2 formulation, chosen once per backend: cell codes in a few whole-batch operations
        # where every operation is a kernel launch (launch_bound), cache-sized chunks elsewhere
        wide = self.backend.launch_bound
        self._forward_quads = self._forward_quads_coded if wide else self._forward_quads_chunked
        self._backward_quads = self._backward_quads_coded if wide else self._backward_quads_chunked

    def forward(self, x: Array) -> Array:
        """(N, C, H, W) -> (N, C, Ho, Wo), Ho = (H + 2*padding - kh)//stride + 1."""
        xp = self.xp
        if self._fast():
            return self._forward_quads(x)
        xpad, out_hw = self._prepare(x)
        y, arg = None, None
        for k, rows, cols in window_slices(self.kernel_size, self.stride, (1, 1), out_hw):
            s = xpad[:, :, rows, cols]
            if y is None:
                y, arg = s, self.backend.zeros(tuple(s.shape), "int32")
            else:
                # strict '>' keeps the earlier offset on ties: the first maximum wins
                better = s > y
                y, arg = xp.maximum(y, s), xp.where(better, xp.full_like(arg, k), arg)
        self._x, self._arg, self._out_shape = x, arg, y.shape
        # a 1x1 window leaves y a view of the input: return a copy, never an alias
        return y * 1.0 if self.kernel_size == (1, 1) else y

    def backward(self, grad_out: Array) -> Array:
        """(N, C, Ho, Wo) -> (N, C, H, W): each window's gradient to its first arg-max."""
        x = check_grad(self, grad_out, self._out_shape, self._x)
        if self._fast():
            return self._backward_quads(grad_out, x)
        xp = self.xp
        arg = self._arg
        N, C = x.shape[0], x.shape[1]
        dxpad = self.backend.zeros((N, C, *self._padded_shape(x)), grad_out.dtype)
        for k, rows, cols in window_slices(self.kernel_size, self.stride, (1, 1), arg.shape[2:]):
            dxpad[:, :, rows, cols] += grad_out * xp.astype(arg == k, grad_out.dtype)
        return crop(dxpad, self.pads)

    # The 2x2 path goes through the batch in chunks (backend.pass_chunks): on the CPU each
    # chunk's comparisons stay in a core's cache and the chunks run on all cores. Forward keeps
    # only which of the four cells won each window (one byte per output), so backward reads
    # neither the input nor the output again.

    def _forward_quads_coded(self, x: Array) -> Array:
        """(N, C, H, W) -> (N, C, H/2, W/2) by 2x2 windows, whole-batch; keeps the code of each winner."""
        q, _ = self._quads(x)
        y, code = quad_codes(self.xp, q, self._cell_codes())
        self._x, self._arg, self._out_shape = x, code, y.shape
        return y

    def _forward_quads_chunked(self, x: Array) -> Array:
        """(N, C, H, W) -> (N, C, H/2, W/2) by 2x2 windows; keeps the winning cell of each."""
        q, (Ho, Wo) = self._quads(x)
        N, C = x.shape[0], x.shape[1]
        y = self.backend.empty((N, C, Ho, Wo), x.dtype)
        winner = self.backend.empty((N, C, Ho, Wo), "uint8")

        def run(lo: int, hi: int) -> None:
            y[lo:hi, ...], winner[lo:hi, ...] = max_of_quads(self.xp, q[lo:hi, ...])

        self.backend.map_chunks(run, self.backend.pass_chunks(N, 2 * sample_bytes(self.backend, x)))
        self._x, self._arg, self._out_shape = x, winner, y.shape
        return y

    def _backward_quads_coded(self, grad_out: Array, x: Array) -> Array:
        """(N, C, Ho, Wo) -> (N, C, H, W) for input x, whole-batch: each window's gradient to its winner."""
        return self._grad_input(route_by_codes(self.xp, grad_out, self._arg, self._cell_codes()), tuple(x.shape))

    def _backward_quads_chunked(self, grad_out: Array, x: Array) -> Array:
        """(N, C, Ho, Wo) -> (N, C, H, W) for input x: each window's gradient to its winning cell."""
        winner = self._arg
        N, C, Ho, Wo = winner.shape
        g6 = self.backend.empty((N, C, Ho, 2, Wo, 2), grad_out.dtype)

        def run(lo: int, hi: int) -> None:
            route_to_winners(self.xp, grad_out[lo:hi, ...], winner[lo:hi, ...], g6, lo)

        self.backend.map_chunks(run, self.backend.pass_chunks(N, 10 * sample_bytes(self.backend, grad_out)))
        return self._grad_input(g6, tuple(x.shape))


class AvgPool2D(_Pool2D):
    """Mean over each window: (N, C, H, W) -> (N, C, Ho, Wo).

    Padding zeros count in the mean (PyTorch's default count_include_pad=True).
    """

    kind = "avgpool2d"

    def forward(self, x: Array) -> Array:
        """(N, C, H, W) -> (N, C, Ho, Wo), Ho = (H + 2*padding - kh)//stride + 1."""
        if self._fast():
            q, (Ho, Wo) = self._quads(x)
            self._x, self._out_shape = x, (x.shape[0], x.shape[1], Ho, Wo)
            s = q[:, :, :, 0, :, 0] + q[:, :, :, 0, :, 1]
            s += q[:, :, :, 1, :, 0]
            s += q[:, :, :, 1, :, 1]
            return s * 0.25
        xpad, out_hw = self._prepare(x)
        self._x, self._out_shape = x, (x.shape[0], x.shape[1], *out_hw)
        total = None
        for _, rows, cols in window_slices(self.kernel_size, self.stride, (1, 1), out_hw):
            s = xpad[:, :, rows, cols]
            if total is None:
                total = s * 1.0
            else:
                total += s
        return total * (1.0 / (self.kernel_size[0] * self.kernel_size[1]))

    def backward(self, grad_out: Array) -> Array:
        """(N, C, Ho, Wo) -> (N, C, H, W): each window's gradient shared equally by its cells."""
        x = check_grad(self, grad_out, self._out_shape, self._x)
        xp = self.xp
        g = grad_out * (1.0 / (self.kernel_size[0] * self.kernel_size[1]))
        if self._fast():
            N, C, Ho, Wo = g.shape
            g6 = xp.broadcast_to(xp.reshape(g, (N, C, Ho, 1, Wo, 1)), (N, C, Ho, 2, Wo, 2))
            return self._grad_input(g6, tuple(x.shape))
        N, C = x.shape[0], x.shape[1]
        dxpad = self.backend.zeros((N, C, *self._padded_shape(x)), grad_out.dtype)
        for _, rows, cols in window_slices(self.kernel_size, self.stride, (1, 1), g.shape[2:]):
            dxpad[:, :, rows, cols] += g
        return crop(dxpad, self.pads)
