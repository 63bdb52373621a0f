"""Synchronised batch norm: each BatchNorm layer's moments and gradient sums over the global batch."""

from __future__ import annotations

import numpy as np

from xnet.backends import Array, Backend
from xnet.parallel.world import World


class MomentSync:
    """What a BatchNorm layer asks of the ranks when its statistics span the global batch.

    Forward: the ranks' (mean, biased variance, count) per channel are gathered and combined in
    rank order (Chan's pairwise formula, as the layer combines its chunks), so every rank gets the
    same statistics, the global batch's. Backward: the two per-channel sums the input gradient
    needs are summed over the ranks (the parameter gradients stay local: the gradient all-reduce
    sums them with the rest). Values travel as float64 on the host: a few numbers per channel.
    """

    def __init__(self, world: World, backend: Backend):
        self.world, self.backend = world, backend

    def moments(self, mean: Array, var: Array, count: int) -> tuple[Array, Array, int]:
        """(C,), (C,), values per channel here -> the same over every rank's batch."""
        b = self.backend
        local = np.concatenate([b.to_numpy(mean), b.to_numpy(var), [count]]).astype(np.float64)
        rows = self.world.allgather(local, "synchronising batch-norm statistics")
        C = mean.shape[0]
        counts = rows[:, -1]
        total = float(counts.sum())
        means, variances = rows[:, :C], rows[:, C : 2 * C]
        global_mean = (means * counts[:, None]).sum(axis=0) / total
        spread = variances * counts[:, None] + counts[:, None] * (means - global_mean) ** 2
        global_var = spread.sum(axis=0) / total
        return b.asarray(global_mean, mean.dtype), b.asarray(global_var, var.dtype), int(total)

    def sums(self, a: Array, c: Array) -> tuple[Array, Array]:
        """Two per-channel sums (C,) each -> their sums over the ranks."""
        b = self.backend
        both = np.concatenate([b.to_numpy(a), b.to_numpy(c)]).astype(np.float64)
        self.world.allreduce(both, "synchronising batch-norm gradients")
        C = a.shape[0]
        return b.asarray(both[:C], a.dtype), b.asarray(both[C:], c.dtype)


__all__ = ["MomentSync"]
