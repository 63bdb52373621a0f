"""Memory-bound layers cut into batch chunks (Backend.pass_chunks) give the one-chunk result."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from xnet.nn.batchnorm import BatchNorm1D, BatchNorm2D
from xnet.nn.module import build_on
from xnet.nn.pooling import MaxPool2D

LAYERS = {
    "relu": (ReLU, (7, 3, 4, 4)),
    "leaky_relu": (lambda: LeakyReLU(0.1), (7, 3, 4, 4)),
    "sigmoid": (Sigmoid, (7, 5)),
    "tanh": (Tanh, (7, 3, 4, 4)),
    "maxpool": (lambda: MaxPool2D(2), (7, 3, 6, 6)),
    "maxpool_odd": (lambda: MaxPool2D(2), (7, 3, 5, 7)),
    "batchnorm2d": (lambda: BatchNorm2D(3), (7, 3, 4, 4)),
    "batchnorm1d": (lambda: BatchNorm1D(5), (7, 5)),
}


def _run(backend, layer, x, g):
    """Forward and backward once; host copies of y, dx and every parameter gradient and buffer."""
    layer.zero_grad()
    y = layer.forward(backend.asarray(x, "float64"))
    dx = layer.backward(backend.asarray(g, "float64"))
    extra = [p.grad for p in layer.parameters()] + [getattr(layer, b) for b in layer.buffer_names]
    return [backend.to_numpy(a).copy() for a in (y, dx, *extra)]


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("training", [True, False])
def test_chunked_passes_give_the_one_chunk_result(backend, monkeypatch, name, training):
    make, shape = LAYERS[name]
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    x[0, 0] = x[0, 1] = 0.5  # ties and zeros: the chunks must break ties as the whole batch does
    with build_on(backend, "float64"):
        layers = [make(), make()]
        y_shape = tuple(make().forward(backend.asarray(x, "float64")).shape)
    g = rng.standard_normal(y_shape)
    results = []
    for layer, split in zip(layers, (1 << 40, 1), strict=True):
        monkeypatch.setattr(backend, "pass_split_bytes", split, raising=False)
        monkeypatch.setattr(backend, "pass_bytes", 2 * x[0].nbytes, raising=False)  # a sample or two
        assert len(backend.pass_chunks(shape[0], x[0].nbytes)) == (1 if split > 1 else 4)
        layer.train(training)
        results.append(_run(backend, layer, x, g))
    for one, chunked in zip(*results, strict=True):
        np.testing.assert_allclose(chunked, one, rtol=1e-12, atol=1e-12)


def test_pass_chunks_split_only_large_passes(backend, monkeypatch):
    monkeypatch.setattr(backend, "pass_split_bytes", 1000, raising=False)
    monkeypatch.setattr(backend, "pass_bytes", 300, raising=False)
    monkeypatch.setattr(backend, "threads", 2, raising=False)
    assert backend.pass_chunks(10, 100) == [(0, 10)]  # 1000 bytes: not more than the split size
    chunks = backend.pass_chunks(11, 100)  # 3 items per chunk at most, an even count of chunks
    assert chunks == [(0, 2), (2, 5), (5, 8), (8, 11)]


def test_map_chunks_returns_results_in_chunk_order(backend):
    chunks = [(0, 2), (2, 5), (5, 9), (9, 10)]
    assert backend.map_chunks(lambda lo, hi: (lo, hi), chunks) == chunks
    assert backend.map_chunks(lambda lo, hi: hi - lo, [(0, 4)]) == [4]


@pytest.mark.parametrize("split", [1 << 40, 1])
def test_chunked_batch_statistics_stay_accurate_far_from_zero(backend, monkeypatch, split):
    # float32 values 1000 +- 0.01: E[x^2] - mean^2 would lose every digit of the variance; the
    # per-chunk moments, combined about the overall mean, keep it
    rng = np.random.default_rng(4)
    x = (1000.0 + 0.01 * rng.standard_normal((12, 3, 5, 5))).astype(np.float32)
    monkeypatch.setattr(backend, "pass_split_bytes", split, raising=False)
    monkeypatch.setattr(backend, "pass_bytes", 2 * x[0].nbytes, raising=False)
    with build_on(backend, "float32"):
        bn = BatchNorm2D(3, momentum=1.0)  # running statistics = this batch's
    bn.forward(backend.asarray(x))
    want = x.astype(np.float64).transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(backend.to_numpy(bn.running_mean), want.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(backend.to_numpy(bn.running_var), want.var(axis=1, ddof=1), rtol=1e-2)
