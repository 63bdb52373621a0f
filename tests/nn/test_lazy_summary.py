"""Sizes taken from the data (LazyDense, LazyConv2D, build, TOML tables) and the model summary."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.nn import (
    BatchNorm2D,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    LazyConv2D,
    LazyDense,
    MaxPool2D,
    ReLU,
    Residual,
    Sequential,
    build_on,
    model_from_config,
)


def test_build_takes_sizes_from_the_data(backend):
    with build_on(backend, "float64"):
        net = Sequential(LazyConv2D(4, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(), LazyDense(5), LazyDense(2))
    assert net.parameters() == []
    net.build((3, 6, 6))
    assert [type(m).__name__ for m in net.layers] == ["Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense", "Dense"]
    assert (net[0].in_channels, net[4].in_features, net[5].in_features) == (3, 36, 5)
    assert net[0].weight.data.shape == (4, 3, 3, 3) and backend.to_numpy(net[0].weight.data).dtype == np.float64
    assert net[0].backend is backend and len(net.parameters()) == 6
    assert net.config()["layers"][4] == {"type": "dense", "in_features": 36, "out_features": 5}
    y = net(backend.asarray(np.zeros((2, 3, 6, 6)), "float64"))
    assert tuple(y.shape) == (2, 2)


def test_lazy_layer_materializes_at_its_first_forward():
    layer = LazyDense(3, bias=False)
    y = layer(np.ones((2, 7), np.float32))
    assert isinstance(layer, Dense) and layer.weight.data.shape == (7, 3) and layer.bias is None
    np.testing.assert_allclose(y, np.ones((2, 7), np.float32) @ layer.weight.data, rtol=1e-6)


def test_a_given_wrong_size_names_the_layer_and_both_sizes():
    net = Sequential(Conv2D(1, 4, 3), Flatten(), Dense(100, 2))
    with pytest.raises(ValueError, match=r"^layer 1 \(Dense\(100, 2\)\): in_features = 100 was given, but its "
                                         r"input has 4 \(input shape \(4,\)\)"):
        Sequential(Flatten(), Dense(100, 2)).build((1, 2, 2))
    with pytest.raises(ValueError, match=r"^layer 0 \(Conv2D\(in_channels=1\)\): in_channels = 1 was given, "
                                         r"but its input has 3"):
        net.build((3, 5, 5))
    nested = Sequential(Residual([LazyConv2D(2, 1), Conv2D(5, 2, 1)]))
    with pytest.raises(ValueError, match=r"^layer 0.body.1 \(Conv2D\(in_channels=5\)\): in_channels = 5 was "
                                         r"given, but its input has 2"):
        nested.build((2, 3, 3))
    with pytest.raises(ValueError, match=r"^layer 0 \(LazyDense\): needs flat samples \(features,\), its input is "
                                         r"\(1, 4, 4\); add a flatten layer first"):
        Sequential(LazyDense(3)).build((1, 4, 4))


def test_toml_tables_without_sizes_are_inferred():
    layers = [
        {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"type": "batchnorm2d", "num_channels": 4},
        {"type": "residual", "activation": "relu",
         "layers": [{"type": "conv2d", "out_channels": 6, "kernel_size": 3, "padding": 1, "stride": 2}],
         "shortcut": [{"type": "conv2d", "out_channels": 6, "kernel_size": 1, "stride": 2}]},
        {"type": "globalavgpool2d"},
        {"type": "dense", "out_features": 10},
    ]  # fmt: skip
    net = model_from_config({"layers": layers}, input_shape=(2, 8, 8))
    cfg = net.config()["layers"]
    assert cfg[0]["in_channels"] == 2 and cfg[2]["layers"][0]["in_channels"] == 4
    assert cfg[2]["shortcut"][0]["in_channels"] == 4 and cfg[4]["in_features"] == 6
    # the written config is complete: it rebuilds without an input shape (as checkpoints do)
    assert model_from_config(net.config()).config() == net.config()
    with pytest.raises(ValueError, match=r"model.layers\[0\]: unknown argument 'in_feature' for layer type 'dense' "
                                         r"\(valid: in_features, out_features"):
        model_from_config({"layers": [{"type": "dense", "in_feature": 3, "out_features": 2}]})


def test_summary_rows_fit_in_100_columns_and_nest_residual_blocks():
    net = Sequential(
        Conv2D(1, 32, 3, padding="same"), BatchNorm2D(32), ReLU(),
        Residual([Conv2D(32, 64, 3, stride=2, padding=1), BatchNorm2D(64), ReLU(), Conv2D(64, 64, 3, padding=1)],
                 [Conv2D(32, 64, 1, stride=2), BatchNorm2D(64)], activation="relu"),
        GlobalAvgPool2D(), Dense(64, 10),
    )  # fmt: skip
    text = net.summary((1, 28, 28))
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100
    row = {line.split()[0]: line for line in lines if line and line[0] != "-"}
    assert "Conv2D 1->32 3x3 pad same" in row["0"] and "(32, 28, 28)" in row["0"] and row["0"].endswith(" 320")
    assert row["3"].split()[1] == "Residual" and "(64, 14, 14)" in row["3"]
    assert "Conv2D 32->64 1x1 stride 2" in row["3.shortcut.0"] and row["3.shortcut.0"].endswith(" 2,112")
    assert lines.index(row["3.body.0"]) == lines.index(row["3"]) + 1 and row["3.body.0"].startswith("  3.body.0")
    assert "(64,)" in row["4"] and row["5"].endswith(" 650")
    trainable = net.num_parameters()
    buffers = 2 * (32 + 64 + 64)  # running mean and variance of the three batch norms
    assert lines[-1] == (
        f"parameters: {trainable + buffers:,} total, {trainable:,} trainable, {buffers:,} non-trainable "
        "(running statistics)"
    )
    assert net.training  # left in the mode it was in


def test_summary_without_a_shape_uses_builds():
    net = Sequential(Flatten(), LazyDense(3)).build((2, 2))
    assert net.summary() == net.summary((2, 2))
    assert net.summary().splitlines()[-1] == "parameters: 15 total, 15 trainable"
    with pytest.raises(TypeError, match=r"Sequential.summary: input_shape must be a tuple of ints"):
        Sequential(Flatten()).summary()
