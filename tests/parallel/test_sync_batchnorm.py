"""Synchronised batch norm on half a batch, the other half's rank played by a stand-in, equals batch norm on
the whole batch: outputs, running statistics and input gradients."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.nn.batchnorm import BatchNorm1D, BatchNorm2D
from xnet.nn.module import build_on
from xnet.parallel.sync_batchnorm import MomentSync

CASES = {"1d": (BatchNorm1D, (8, 3), (0,)), "2d": (BatchNorm2D, (6, 3, 2, 3), (0, 2, 3))}


class OtherHalf:
    """A world of two ranks, whose rank 1 holds the other half of the batch: its moments and gradient sums."""

    def __init__(self, moments: np.ndarray, sums: np.ndarray):
        self.moments, self.sums = moments, sums

    def allgather(self, values, what):
        return np.stack([values, self.moments])

    def allreduce(self, buf, what):
        buf += self.sums


def _layer(backend, kind):
    cls, shape, axes = CASES[kind]
    with build_on(backend, "float64"):
        layer = cls(shape[1], momentum=0.3)
    rng = np.random.default_rng(0)
    layer.weight.data = backend.asarray(rng.uniform(0.5, 2.0, shape[1]), "float64")
    layer.bias.data = backend.asarray(rng.standard_normal(shape[1]), "float64")
    return layer


@pytest.mark.parametrize("kind", sorted(CASES))
def test_half_a_batch_synchronised_is_the_whole_batch(backend, kind):
    _, shape, axes = CASES[kind]
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape) * 2 + 1
    g = rng.standard_normal(shape)
    half = shape[0] // 2
    whole = _layer(backend, kind)
    y = backend.to_numpy(whole.forward(backend.asarray(x, "float64")))
    dx = backend.to_numpy(whole.backward(backend.asarray(g, "float64")))

    # what rank 1 would send: its half's mean, biased variance and count; its gradient sums about the global mean
    xb, gb = x[half:], g[half:]
    count = xb.size // shape[1]
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    center = (xb - mean.reshape((1, -1) + (1,) * (x.ndim - 2)))
    sums = np.concatenate([(gb * center).sum(axis=axes) / np.sqrt(var + 1e-5), gb.sum(axis=axes)])
    other = OtherHalf(np.concatenate([xb.mean(axis=axes), xb.var(axis=axes), [count]]), sums)

    mine = _layer(backend, kind)
    mine.sync = MomentSync(other, backend)
    y0 = backend.to_numpy(mine.forward(backend.asarray(x[:half], "float64")))
    dx0 = backend.to_numpy(mine.backward(backend.asarray(g[:half], "float64")))
    np.testing.assert_allclose(y0, y[:half], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx0, dx[:half], rtol=1e-10, atol=1e-12)
    for name in ("running_mean", "running_var"):  # updated from the whole batch's statistics
        np.testing.assert_allclose(backend.to_numpy(getattr(mine, name)), backend.to_numpy(getattr(whole, name)))
    # the parameter gradients stay this half's: the gradient all-reduce adds the other half's
    centered0 = x[:half] - mean.reshape((1, -1) + (1,) * (x.ndim - 2))
    np.testing.assert_allclose(backend.to_numpy(mine.bias.grad), g[:half].sum(axis=axes))
    np.testing.assert_allclose(
        backend.to_numpy(mine.weight.grad), (g[:half] * centered0).sum(axis=axes) / np.sqrt(var + 1e-5)
    )
