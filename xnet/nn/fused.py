"""[BatchNorm2D ->] ReLU [-> MaxPool2D(2)] run together, one chunk of the batch at a time.

These layers touch every value of a large activation and do little arithmetic, so run one
after another their time is memory traffic: each writes a full-size result that the next reads
back. `Sequential` hands such a run (two or three of them) to `NormReLUPool`, which does the same
arithmetic chunk by chunk (backend.pass_chunks): the normalised values, the ReLU and the pooling
of a chunk stay in a core's cache, and only the pooled output and one byte per window (which
cell won, or that the ReLU was off there) are kept. As ReLU is monotone, the max of rectified
values is the rectified max, so the ReLU runs on the pooled quarter only. Backward routes the
pooled gradient to the winning cells and recomputes the normalised values from the kept input.

On a launch-bound backend (a GPU) chunks do not matter and operations do: the step runs as
whole-batch operations, the winner of each window as a code (pooling.quad_codes), 22 operations
forward and 15 backward with batch norm instead of 52 and 37.

Results equal the layers run one by one (tests/nn/test_fused.py); the layers keep their
parameters, gradients and running statistics as usual. An input the fused code does not handle
(not NCHW, or an odd height or width before the pool) runs through the layers one by one.
`Sequential.fuse = False` turns fusing off.
"""

from __future__ import annotations

from xnet.backends import Array
from xnet.nn.activations import ReLU
from xnet.nn.batched import sample_bytes
from xnet.nn.batchnorm import BatchNorm2D
from xnet.nn.checks import check_grad
from xnet.nn.module import Module
from xnet.nn.pooling import MaxPool2D
from xnet.nn.quads import cell_codes, max_of_quads, quad_codes, route_by_codes, route_to_winners


class NormReLUPool:
    """layers [BatchNorm2D,] ReLU [, MaxPool2D 2x2] of a Sequential, at least two, as one step."""

    def __init__(self, layers: list[Module]):
        self.layers = layers
        self.bn: BatchNorm2D | None = layers[0] if type(layers[0]) is BatchNorm2D else None
        self.pool: MaxPool2D | None = layers[-1] if type(layers[-1]) is MaxPool2D else None
        self.size = len(layers)  # how many layers this step stands for
        self._cache: tuple | None = None
        self._out_shape: tuple[int, ...] | None = None  # checked against backward's gradient
        self._one_by_one = False  # the last forward ran the layers one by one
        self._codes: Array | None = None  # pooling.cell_codes on the device, made once
        # the formulation, chosen once (a step is made again when the layers' backend changes):
        # whole-batch operations where every operation is a kernel launch, chunks elsewhere
        wide = layers[0].backend.launch_bound
        self._forward_on = self._forward_wide if wide else self._forward_chunked
        self._backward_on = self._backward_wide if wide else self._backward_chunked

    @staticmethod
    def at(layers: list[Module], i: int) -> NormReLUPool | None:
        """The fused step starting at layers[i], or None when no such run starts there.

        Exact types only: a subclass may have changed what its forward does.
        """
        j = i + 1 if type(layers[i]) is BatchNorm2D else i  # where the ReLU must be
        if j >= len(layers) or type(layers[j]) is not ReLU:
            return None
        j += 1
        if j < len(layers) and type(layers[j]) is MaxPool2D and layers[j]._fast():
            j += 1
        return NormReLUPool(layers[i:j]) if j - i >= 2 else None

    def forward(self, x: Array) -> Array:
        """(N, C, H, W) -> (N, C, H/2, W/2) with the pool, (N, C, H, W) without."""
        pool = self.pool
        self._cache, self._out_shape = None, None
        self._one_by_one = x.ndim != 4 or (pool is not None and (x.shape[2] % 2 or x.shape[3] % 2))
        if self._one_by_one:
            for layer in self.layers:
                x = layer.forward(x)
            self._out_shape = x.shape
            return x
        return self._forward_on(x)

    def _forward_chunked(self, x: Array) -> Array:
        """forward chunk by chunk, each chunk's passes in the CPU's cache."""
        bn, pool, layer = self.bn, self.pool, self.layers[0]
        backend, xp = layer.backend, layer.xp
        N, C, H, W = x.shape
        channel_scale = channel_shift = None
        if bn is not None:
            bn._check(x)
            mean, inv_std, M = bn._statistics(x)
            channel_scale, channel_shift = bn._scale_shift(mean, inv_std)
            scale, shift = bn._bcast(channel_scale), bn._bcast(channel_shift)
        stats = (mean, inv_std, scale, shift, bn.training, M) if bn is not None else None
        out_shape = (N, C, H // 2, W // 2) if pool is not None else (N, C, H, W)
        # a backend's compiled kernel (the NumPy backend's, cpu_kernels/) does the loop below in one pass
        fast = backend.fused_norm_relu_pool(x, channel_scale, channel_shift) if pool is not None else None
        if fast is not None:
            self._cache, self._out_shape = (x, fast[1], stats), out_shape
            return fast[0]
        y = backend.empty(out_shape, x.dtype)
        winner = backend.empty(out_shape, "uint8") if pool is not None else None

        def run(lo: int, hi: int) -> None:
            z = x[lo:hi, ...] if bn is None else x[lo:hi, ...] * scale + shift
            if pool is None:
                y[lo:hi, ...] = z * xp.astype(z > 0, z.dtype)  # as ReLU.forward computes it
                return
            m, cell = max_of_quads(xp, xp.reshape(z, (hi - lo, C, H // 2, 2, W // 2, 2)))
            y[lo:hi, ...] = m * xp.astype(m > 0, m.dtype)
            # winner 4: the ReLU is off at the winning cell, so no cell of the window gets a
            # gradient; backward then needs neither the ReLU's mask nor z again
            winner[lo:hi, ...] = cell + xp.astype(m <= 0, xp.uint8) * 4

        backend.map_chunks(run, backend.pass_chunks(N, 3 * sample_bytes(backend, x)))
        self._cache, self._out_shape = (x, winner, stats), out_shape
        return y

    def backward(self, grad_out: Array) -> Array:
        """Gradient of the output -> gradient of the input; accumulates the batch norm's."""
        # named after the last layer this step stands for: the one whose output the gradient is of
        check_grad(self.layers[-1], grad_out, self._out_shape)
        if self._one_by_one:
            for layer in reversed(self.layers):
                grad_out = layer.backward(grad_out)
            return grad_out
        return self._backward_on(grad_out)

    def _backward_chunked(self, grad_out: Array) -> Array:
        """backward chunk by chunk, as forward."""
        layer = self.layers[0]
        backend, xp = layer.backend, layer.xp
        x, winner, stats = self._cache
        if winner is not None:
            fast = self._backward_compiled(grad_out, x, winner, stats)
            if fast is not None:
                return fast
        N, C, H, W = x.shape
        chunks = backend.pass_chunks(N, 4 * sample_bytes(backend, x))
        # the gradient at the ReLU's input: pooled gradients routed to the winning cells (winner
        # 4 matches no cell), or without a pool the gradient where z > 0
        dz = backend.empty(tuple(x.shape), x.dtype)
        dz6 = xp.reshape(dz, (N, C, H // 2, 2, W // 2, 2)) if winner is not None else None
        if stats is None:  # ReLU -> MaxPool2D: dz is the input gradient
            backend.map_chunks(
                lambda lo, hi: route_to_winners(xp, grad_out[lo:hi, ...], winner[lo:hi, ...], dz6, lo), chunks
            )
            return dz
        bn = self.bn
        mean, inv_std, scale, shift, training, M = stats

        def sums(lo: int, hi: int) -> tuple[Array, Array]:
            xs = x[lo:hi, ...]
            if winner is None:
                z = xs * scale + shift
                g = grad_out[lo:hi, ...] * xp.astype(z > 0, z.dtype)
                dz[lo:hi, ...] = g
            else:
                route_to_winners(xp, grad_out[lo:hi, ...], winner[lo:hi, ...], dz6, lo)
                g = dz[lo:hi, ...]
            return bn._channel_dot(g, xs - bn._bcast(mean)), bn._channel_sum(g)

        s, k, c = bn._grad_terms(backend.map_chunks(sums, chunks), inv_std, M, training)
        s, bmean = bn._bcast(s), bn._bcast(mean)
        if k is None:
            return dz * s
        k, c = bn._bcast(k), bn._bcast(c)
        dx = backend.empty(tuple(x.shape), x.dtype)

        def grad(lo: int, hi: int) -> None:
            dx[lo:hi, ...] = dz[lo:hi, ...] * s - (x[lo:hi, ...] - bmean) * k - c

        backend.map_chunks(grad, chunks)
        return dx

    def _backward_compiled(self, grad_out: Array, x: Array, winner: Array, stats: tuple | None) -> Array | None:
        """backward through the backend's compiled pooling-gradient kernels (two passes, no dz
        written); None where the backend has none, before anything was accumulated."""
        backend = self.layers[0].backend
        if stats is None:
            return backend.fused_pool_grad_input(grad_out, x, winner, None)
        mean, inv_std, _, _, training, M = stats
        sums = backend.fused_pool_grad_sums(grad_out, x, winner, mean)
        if sums is None:
            return None
        s, k, c = self.bn._grad_terms([sums], inv_std, M, training)
        # the backend that took these arrays for the sums takes them here too (base.py)
        return backend.fused_pool_grad_input(grad_out, x, winner, (s,) if k is None else (mean, s, k, c))

    # -- launch-bound backends: whole-batch operations, as few as possible -----------------------

    def _forward_wide(self, x: Array) -> Array:
        """(N, C, H, W) -> (N, C, H/2, W/2) with the pool, (N, C, H, W) without."""
        bn, pool, layer = self.bn, self.pool, self.layers[0]
        xp = layer.xp
        N, C, H, W = x.shape
        z, stats = x, None
        if bn is not None:
            bn._check(x)
            mean, inv_std, M = bn._statistics(x)
            scale, shift = bn._scale_shift(mean, inv_std)
            z = x * bn._bcast(scale) + bn._bcast(shift)
            stats = (mean, inv_std, scale, bn.training, M)
        if pool is None:
            y, code = xp.maximum(z, 0.0), None  # backward reads the ReLU's mask off y
        else:
            if self._codes is None:
                self._codes = cell_codes(layer.backend)
            y, code = quad_codes(xp, xp.reshape(z, (N, C, H // 2, 2, W // 2, 2)), self._codes, relu=True)
        self._cache, self._out_shape = (x, code, stats, y), tuple(y.shape)
        return y

    def _backward_wide(self, grad_out: Array) -> Array:
        """Gradient of the output -> gradient of the input; accumulates the batch norm's."""
        x, code, stats, y = self._cache
        xp = self.layers[0].xp
        if code is None:
            dz = xp.where(y > 0, grad_out, 0.0)
        else:
            dz = xp.reshape(route_by_codes(xp, grad_out, code, self._codes), tuple(x.shape))
        if stats is None:
            return dz
        mean, inv_std, scale, training, M = stats
        return self.bn._input_grad_wide(dz, x, mean, inv_std, scale, M, training)


__all__ = ["NormReLUPool"]
