"""Sequential's fused BatchNorm2D -> ReLU [-> MaxPool2D] step gives the layer-by-layer result."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.nn.activations import ReLU
from xnet.nn.batchnorm import BatchNorm2D
from xnet.nn.conv import Conv2D
from xnet.nn.fused import NormReLUPool
from xnet.nn.module import build_on
from xnet.nn.pooling import MaxPool2D
from xnet.nn.sequential import Sequential


def _model(backend, pool: bool, seed: int = 0) -> Sequential:
    with build_on(backend, "float64"):
        layers = [Conv2D(2, 3, 3, padding=1), BatchNorm2D(3), ReLU()]
        if pool:
            layers.append(MaxPool2D(2))
        model = Sequential(*layers)
    rng = np.random.default_rng(seed)
    for p in model.parameters():  # gamma and beta away from 1 and 0, so that they matter
        p.data = backend.asarray(rng.standard_normal(tuple(p.data.shape)) * 0.5 + 0.3, "float64")
    return model


def _run(backend, model, x, g, training):
    model.train(training)
    model.zero_grad()
    y = model.forward(backend.asarray(x, "float64"))
    dx = model.backward(backend.asarray(g, "float64"))
    out = [y] + ([] if dx is None else [dx]) + [p.grad for p in model.parameters()]
    out += [b for _, b in model.named_buffers()]
    return [backend.to_numpy(a).copy() for a in out]


@pytest.mark.parametrize("pool, hw", [(True, (6, 8)), (True, (5, 7)), (False, (5, 6))])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("input_grad", [True, False])
def test_fused_step_gives_the_layer_by_layer_result(backend, monkeypatch, pool, hw, training, chunked, input_grad):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 2, *hw))
    x[0, :, 0, :2] = 0.0  # tied windows and zeros at the ReLU
    if chunked:  # one chunk per sample or two, as a large batch is cut on the CPU
        monkeypatch.setattr(backend, "pass_split_bytes", 1, raising=False)
        monkeypatch.setattr(backend, "pass_bytes", 4 * x[0].nbytes, raising=False)
    fused, plain = _model(backend, pool), _model(backend, pool)
    plain.fuse = False
    for m in (fused, plain):
        m.needs_input_grad = input_grad
    y_shape = tuple(_model(backend, pool).forward(backend.asarray(x, "float64")).shape)
    g = rng.standard_normal(y_shape)
    for _ in range(2):  # twice: running statistics move on, caches are replaced
        got, want = _run(backend, fused, x, g, training), _run(backend, plain, x, g, training)
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    steps = [type(step) for _, step in fused._plan()]
    assert steps == [Conv2D, NormReLUPool]
    assert [type(step) for _, step in plain._plan()] == [type(layer) for layer in plain.layers]


def test_only_exact_runs_are_fused(backend):
    with build_on(backend, "float64"):
        bn_relu_pool3 = Sequential(BatchNorm2D(2), ReLU(), MaxPool2D(3))
        relu_bn_pool = Sequential(ReLU(), BatchNorm2D(2), MaxPool2D(2))
        relu_pool = Sequential(Conv2D(2, 2, 1), ReLU(), MaxPool2D(2))
    steps = bn_relu_pool3._plan()
    assert isinstance(steps[0][1], NormReLUPool) and steps[0][1].pool is None  # 3x3 pool: not fused
    assert steps[1] == (2, bn_relu_pool3.layers[2])
    assert not any(isinstance(s, NormReLUPool) for _, s in relu_bn_pool._plan())
    steps = relu_pool._plan()
    assert [i for i, _ in steps] == [0, 1] and steps[1][1].bn is None and steps[1][1].size == 2


@pytest.mark.parametrize("hw", [(6, 8), (5, 6)])
def test_fused_relu_pool_gives_the_layer_by_layer_result(backend, hw):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 2, *hw))
    x[0, 0, :2, :2] = [[-0.0, 0.0], [-1.0, 0.0]]  # a window of zeros: no gradient, as unfused
    x[1, 1, :2, :2] = 0.7  # a tied positive window: the first cell wins
    g = backend.asarray(rng.standard_normal((4, 2, hw[0] // 2, hw[1] // 2)), "float64")
    results = []
    for fuse in (True, False):
        with build_on(backend, "float64"):
            model = Sequential(ReLU(), MaxPool2D(2))
        model.fuse = fuse
        y = model.forward(backend.asarray(x, "float64"))
        results.append([backend.to_numpy(a) for a in (y, model.backward(g))])
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


def test_backward_before_forward_is_a_clear_error(backend):
    model = _model(backend, pool=True)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        model.backward(backend.zeros((6, 3, 3, 4), "float64"))


def test_moving_the_model_drops_the_fused_steps_caches(backend):
    # arrays cached on the old device must not reach backward on the new one
    model = _model(backend, pool=True)
    model.forward(backend.asarray(np.ones((2, 2, 4, 4)), "float64"))
    model.to("strict", "float64")
    with pytest.raises(RuntimeError, match="backward called before forward"):
        model.backward(model.backend.zeros((2, 3, 2, 2), "float64"))
