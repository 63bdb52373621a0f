"""BatchNorm2D -> ReLU [-> MaxPool2D(2)] run together, one chunk of the batch at a time.

The three layers touch every value of a large activation and do little arithmetic, so run one
after another their time is memory traffic: each writes a full-size result that the next reads
back. `Sequential` hands such a run to `NormReLUPool`, which does the same arithmetic chunk by
chunk (backend.pass_chunks): the normalised values, the ReLU and the pooling of a chunk stay in
a core's cache, and only the pooled output and one byte per window (which cell won) are kept.
Backward recomputes the normalised values from the kept input instead of storing them.

Results equal the layers run one by one (tests/nn/test_fused.py); the layers keep their
parameters, gradients and running statistics as usual. `Sequential.fuse = False` turns this off.
"""

from __future__ import annotations

from xnet.backends import Array
from xnet.nn.activations import ReLU
from xnet.nn.batched import sample_bytes
from xnet.nn.batchnorm import BatchNorm2D
from xnet.nn.module import Module
from xnet.nn.pooling import MaxPool2D, max_of_quads, route_to_winners


class NormReLUPool:
    """layers[i:i+2] (BatchNorm2D, ReLU) or layers[i:i+3] (..., MaxPool2D 2x2) as one step."""

    def __init__(self, bn: BatchNorm2D, pool: MaxPool2D | None):
        self.bn, self.pool = bn, pool
        self.size = 2 if pool is None else 3  # how many layers this step stands for
        self._cache: tuple | None = None

    @staticmethod
    def at(layers: list[Module], i: int) -> NormReLUPool | None:
        """The fused step starting at layers[i], or None when they are not such a run.

        Exact types only: a subclass may have changed what its forward does.
        """
        if i + 1 >= len(layers) or type(layers[i]) is not BatchNorm2D or type(layers[i + 1]) is not ReLU:
            return None
        pool = layers[i + 2] if i + 2 < len(layers) else None
        fits = type(pool) is MaxPool2D and pool._fast()
        return NormReLUPool(layers[i], pool if fits else None)

    def forward(self, x: Array) -> Array:
        """(N, C, H, W) -> (N, C, H/2, W/2) pooled (or (N, C, H, W) without the pool)."""
        bn, backend, xp = self.bn, self.bn.backend, self.bn.xp
        bn._check(x)
        N, C, H, W = x.shape
        pool = self.pool if H % 2 == 0 and W % 2 == 0 else None  # odd sizes: pool on its own
        mean, inv_std, M = bn._statistics(x)
        scale, shift = (bn._bcast(v) for v in bn._scale_shift(mean, inv_std))
        chunks = backend.pass_chunks(N, 3 * sample_bytes(backend, x))
        out_shape = (N, C, H // 2, W // 2) if pool is not None else (N, C, H, W)
        y = backend.empty(out_shape, x.dtype)
        winner = backend.empty(out_shape, "uint8") if pool is not None else None

        def run(lo: int, hi: int) -> None:
            z = x[lo:hi, ...] * scale + shift
            z = z * xp.astype(z > 0, z.dtype)  # as ReLU.forward computes it
            if pool is None:
                y[lo:hi, ...] = z
            else:
                q = xp.reshape(z, (hi - lo, C, H // 2, 2, W // 2, 2))
                m, cell = max_of_quads(xp, q)
                y[lo:hi, ...] = m
                # winner 4: the ReLU was off at the winning cell (m = 0), so no cell of the window
                # gets a gradient; backward then needs neither the ReLU's mask nor z again
                winner[lo:hi, ...] = cell + xp.astype(m <= 0, xp.uint8) * 4

        backend.map_chunks(run, chunks)
        self._cache = (x, mean, inv_std, scale, shift, bn.training, M, winner)
        if pool is None and self.pool is not None:
            return self.pool.forward(y)
        return y

    def backward(self, grad_out: Array) -> Array:
        """Gradient of the output -> (N, C, H, W); accumulates the batch norm's gradients."""
        if self._cache is None:
            raise RuntimeError("NormReLUPool: backward called before forward")
        x, mean, inv_std, scale, shift, training, M, winner = self._cache
        bn, backend, xp = self.bn, self.bn.backend, self.bn.xp
        if winner is None and self.pool is not None:  # the pool ran on its own
            grad_out = self.pool.backward(grad_out)
        N, C, H, W = x.shape
        chunks = backend.pass_chunks(N, 4 * sample_bytes(backend, x))
        # the gradient at the batch norm's output, built chunk by chunk: pooled gradients routed
        # to the winning cells, zero where the ReLU was off
        dz = backend.empty(tuple(x.shape), x.dtype)
        dz6 = xp.reshape(dz, (N, C, H // 2, 2, W // 2, 2)) if winner is not None else None

        def sums(lo: int, hi: int) -> tuple[Array, Array]:
            xs = x[lo:hi, ...]
            if winner is None:
                z = xs * scale + shift
                g = grad_out[lo:hi, ...] * xp.astype(z > 0, z.dtype)
                dz[lo:hi, ...] = g
            else:  # winner 4 (ReLU off) matches no cell: the whole window gets zeros
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


__all__ = ["NormReLUPool"]
