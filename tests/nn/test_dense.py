"""Dense: forward against a hand-computed case, gradient checks, accumulation, errors, config."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import gradient_check

from xnet.backends import get_backend
from xnet.nn.dense import Dense, Linear
from xnet.nn.module import build_on


def test_forward_hand_computed(backend, dtype):
    with build_on(backend, dtype):
        layer = Dense(2, 3)
    layer.weight.data = backend.asarray([[1.0, 0.0, -1.0], [2.0, 0.5, 3.0]], dtype)
    layer.bias.data = backend.asarray([0.5, -1.0, 0.0], dtype)
    x = backend.asarray([[1.0, 2.0], [-1.0, 0.0]], dtype)
    y = backend.to_numpy(layer.forward(x))
    # row 1: [1 + 4, 0 + 1, -1 + 6] + b; row 2: [-1, 0, 1] + b
    np.testing.assert_array_equal(y, [[5.5, 0.0, 5.0], [-0.5, -1.0, 1.0]])
    assert y.dtype == np.dtype(dtype)


def test_backward_hand_computed_and_accumulates(backend):
    with build_on(backend, "float64"):
        layer = Dense(2, 2)
    layer.weight.data = backend.asarray([[1.0, 2.0], [3.0, 4.0]], "float64")
    x = backend.asarray([[1.0, -1.0]], "float64")
    g = backend.asarray([[1.0, 2.0]], "float64")
    for _ in range(2):
        layer.forward(x)
        dx = backend.to_numpy(layer.backward(g))
    np.testing.assert_array_equal(dx, [[5.0, 11.0]])  # g W^T
    dw = backend.to_numpy(layer.weight.grad)
    np.testing.assert_array_equal(dw, 2 * np.array([[1, 2], [-1, -2]]))  # twice x^T g
    np.testing.assert_array_equal(backend.to_numpy(layer.bias.grad), [2.0, 4.0])
    layer.zero_grad()
    assert not backend.to_numpy(layer.weight.grad).any()


@pytest.mark.parametrize("bias", [True, False])
def test_gradient_check(backend, bias):
    with build_on(backend, "float64"):
        layer = Dense(4, 3, bias=bias, bias_init="normal(std=0.5)")
    x = backend.asarray(np.random.default_rng(0).standard_normal((3, 4)), "float64")
    gradient_check(layer, x, backend)
    assert [p.name for p in layer.parameters()] == (["weight", "bias"] if bias else ["weight"])


@pytest.mark.parametrize("shape", [(5, 3), (5,), (2, 4, 1)])
def test_bad_input_message(backend, shape):
    with build_on(backend):
        layer = Dense(4, 3)
    with pytest.raises(ValueError) as e:
        layer.forward(backend.zeros(shape))
    assert f"Dense(4, 3): expected input (N, 4), got shape {shape}" in str(e.value)


@pytest.mark.parametrize("bad", [0, -2, 2.0, True, "4"])
def test_bad_sizes(bad):
    with pytest.raises(ValueError, match="Dense: in_features must be a positive int"):
        Dense(bad, 3)


def test_initialisation_and_regularize_flags(backend, dtype):
    backend.rng.seed(0)
    with build_on(backend, dtype):
        layer = Dense(300, 200)
    w = backend.to_numpy(layer.weight.data)
    bound = np.sqrt(6 / 500)
    assert w.dtype == np.dtype(dtype) and w.shape == (300, 200)
    assert w.min() >= -bound and w.max() <= bound and abs(w.std() - bound / np.sqrt(3)) < 0.002
    assert not backend.to_numpy(layer.bias.data).any()
    assert layer.weight.regularize and not layer.bias.regularize


def test_config_round_trip(backend):
    with build_on(backend):
        plain = Dense(4, 3)
        custom = Dense(4, 3, bias=True, init="kaiming_normal", bias_init="constant(value=0.1)")
        nobias = Linear(2, 5, bias=False, bias_init="ones")
    assert plain.config() == {"type": "dense", "in_features": 4, "out_features": 3}
    cfg = custom.config()
    assert cfg == {
        "type": "dense",
        "in_features": 4,
        "out_features": 3,
        "init": "kaiming_normal",
        "bias_init": "constant(value=0.1)",
    }
    assert nobias.config() == {"type": "dense", "in_features": 2, "out_features": 5, "bias": False}
    with build_on(backend):
        rebuilt = Dense(**{k: v for k, v in cfg.items() if k != "type"})
    assert rebuilt.config() == cfg
    np.testing.assert_allclose(backend.to_numpy(rebuilt.bias.data), 0.1, rtol=1e-6)
    assert repr(plain) == "Dense(in_features=4, out_features=3)"


def test_unknown_initialiser_is_reported_at_construction():
    with pytest.raises(ValueError, match="unknown initialiser 'he'; valid names"):
        Dense(3, 2, init="he")


def test_same_outputs_on_numpy_and_strict():
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    outs = []
    for spec in ("cpu", "strict"):
        b = get_backend(spec, seed=5)
        with build_on(b):
            layer = Dense(4, 2)
        y = layer.forward(b.asarray(x))
        dx = layer.backward(y)
        outs.append([b.to_numpy(a) for a in (y, dx, layer.weight.grad)])
    for a, c in zip(*outs, strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-6)
