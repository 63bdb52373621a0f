"""The anchors' initialisers: PyTorch's ("torch") and Keras's ("keras") defaults, exact draws and bias rules."""

from __future__ import annotations

import math

import numpy as np

from xnet.models import build_preset
from xnet.nn.conv import Conv2D
from xnet.nn.dense import Dense
from xnet.nn.module import build_on
from xnet.nn.registry import model_from_config


def test_torch_dense_draws_weights_then_biases_in_one_over_sqrt_fan_in(backend):
    """Dense(6, 4, init="torch"): W then b drawn from the init stream, both U(-1/sqrt(6), 1/sqrt(6))."""
    bound = 1 / math.sqrt(6)
    with build_on(backend, "float64"):
        backend.rng.seed(5)
        layer = Dense(6, 4, init="torch")
    backend.rng.seed(5)
    stream = backend.rng.stream("init")
    w = backend.to_numpy(stream.uniform((6, 4), -bound, bound, "float64"))
    b = backend.to_numpy(stream.uniform((4,), -bound, bound, "float64"))
    np.testing.assert_array_equal(backend.to_numpy(layer.weight.data), w)
    np.testing.assert_array_equal(backend.to_numpy(layer.bias.data), b)
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0
    assert layer.config()["bias_init"] == "torch"


def test_torch_conv_bound_uses_channels_times_kernel(backend):
    """Conv2D(3, 8, 3): fan_in = 3 * 3 * 3 = 27, as PyTorch's Conv2d; 4 groups: fan_in 8 / 4 * 9 = 18."""
    with build_on(backend, "float64"):
        backend.rng.seed(0)
        conv = Conv2D(3, 64, 3, init="torch")
        grouped = Conv2D(8, 64, 3, groups=4, init="torch")
    for layer, fan_in in ((conv, 27), (grouped, 18)):
        bound = 1 / math.sqrt(fan_in)
        for p in (layer.weight, layer.bias):
            a = backend.to_numpy(p.data)
            assert a.min() >= -bound and a.max() <= bound
        w = backend.to_numpy(layer.weight.data)
        assert w.max() > 0.95 * bound and w.min() < -0.95 * bound  # fills its range: the bound is not smaller
        assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound


def test_keras_is_glorot_uniform_with_zero_biases(backend):
    with build_on(backend, "float64"):
        backend.rng.seed(2)
        keras = Dense(6, 4, init="keras")
        backend.rng.seed(2)
        glorot = Dense(6, 4, init="xavier_uniform")
    np.testing.assert_array_equal(backend.to_numpy(keras.weight.data), backend.to_numpy(glorot.weight.data))
    np.testing.assert_array_equal(backend.to_numpy(keras.bias.data), np.zeros(4))


def test_an_explicit_bias_init_wins(backend):
    with build_on(backend, "float64"):
        zero = Dense(6, 4, init="torch", bias_init="zeros")
        const = Conv2D(2, 3, 3, init="keras", bias_init="constant(value=0.1)")
    np.testing.assert_array_equal(backend.to_numpy(zero.bias.data), np.zeros(4))
    np.testing.assert_allclose(backend.to_numpy(const.bias.data), np.full(3, 0.1))


def test_presets_use_the_anchor_recipe_on_every_layer_and_reload(backend):
    """mlp and cnn with init torch: every weight and bias inside its layer's +-1/sqrt(fan_in), the output layer too."""
    with build_on(backend, "float64"):
        backend.rng.seed(0)
        mlp = build_preset("mlp", (1, 8, 8), 10, [32], init="torch")
        cnn = build_preset("cnn", (1, 8, 8), 10, init="torch")
        old = build_preset("mlp", (1, 8, 8), 10, [32])  # today's default: zero biases
    for model in (mlp, cnn):
        for layer in [m for m in model.layers if isinstance(m, (Dense, Conv2D))]:
            fan_in = layer.in_features if isinstance(layer, Dense) else layer.in_channels * 9
            b = backend.to_numpy(layer.bias.data)
            assert np.abs(b).max() <= 1 / math.sqrt(fan_in) and np.any(b != 0), layer
        with build_on(backend, "float64"):
            again = model_from_config(model.config(), "model")
        assert again.config() == model.config()
    assert all(not np.any(backend.to_numpy(p.data)) for p in old.parameters() if p.name == "bias")


def test_preset_bias_init_option(backend):
    with build_on(backend, "float64"):
        model = build_preset("small-cnn", (1, 8, 8), 10, init="kaiming_uniform", bias_init="constant(value=0.2)")
    biases = [backend.to_numpy(p.data) for p in model.parameters() if p.name == "bias"]
    assert len(biases) == 4 and all(np.all(b == 0.2) for b in biases)
