"""Residual blocks: forward = body + shortcut, gradients, nesting, configs, names, shape errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import gradient_check

from xnet.nn import (
    BatchNorm2D,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    ReLU,
    Residual,
    Sequential,
    Tanh,
    build_on,
    model_from_config,
)


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_identity_block_forward_is_body_plus_input(backend):
    x = _x((3, 4))
    with build_on(backend, "float64"):
        block = Residual([Dense(4, 5), Tanh(), Dense(5, 4)], activation="relu")
    w1, b1 = (backend.to_numpy(p.data) for p in block.body[0].parameters())
    w2, b2 = (backend.to_numpy(p.data) for p in block.body[2].parameters())
    y = backend.to_numpy(block.forward(backend.asarray(x, "float64")))
    ref = np.maximum(np.tanh(x @ w1 + b1) @ w2 + b2 + x, 0)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_identity_block_gradients(backend):
    with build_on(backend, "float64"):
        block = Residual([Dense(4, 6), Tanh(), Dense(6, 4)], activation=Tanh())
    gradient_check(block, backend.asarray(_x((3, 4), 1), "float64"), backend)


def test_projection_block_gradients(backend):
    with build_on(backend, "float64"):
        block = Residual(
            [Conv2D(2, 3, 3, stride=2, padding=1), BatchNorm2D(3), Tanh(), Conv2D(3, 3, 3, padding=1)],
            [Conv2D(2, 3, 1, stride=2), BatchNorm2D(3)],
        )
    gradient_check(block, backend.asarray(_x((2, 2, 5, 5), 2), "float64"), backend, rtol=1e-4, atol=1e-6)


def test_projection_forward_against_separate_layers(backend):
    x = backend.asarray(_x((2, 2, 6, 6), 3), "float64")
    with build_on(backend, "float64"):
        body, short = Sequential(Conv2D(2, 4, 3, stride=2, padding=1)), Sequential(Conv2D(2, 4, 1, stride=2))
        block = Residual(body, short, activation="relu")
    ref = np.maximum(backend.to_numpy(body.forward(x)) + backend.to_numpy(short.forward(x)), 0)
    np.testing.assert_allclose(backend.to_numpy(block.forward(x)), ref, rtol=1e-13)


def _net():
    return Sequential(
        Conv2D(1, 4, 3, padding=1), BatchNorm2D(4), ReLU(),
        Residual([Conv2D(4, 8, 3, stride=2, padding=1), BatchNorm2D(8), ReLU(), Conv2D(8, 8, 3, padding=1)],
                 [Conv2D(4, 8, 1, stride=2), BatchNorm2D(8)], activation="relu"),
        Residual([Conv2D(8, 8, 3, padding=1)]),
        GlobalAvgPool2D(), Dense(8, 3),
    )  # fmt: skip


def test_nested_names_config_round_trip_and_state(backend):
    with build_on(backend, "float32"):
        net = _net()
        names = [n for n, _ in net.named_parameters()]
        assert names[4:8] == ["3.body.0.weight", "3.body.0.bias", "3.body.1.weight", "3.body.1.bias"]
        assert "3.shortcut.1.weight" in names and "4.body.0.weight" in names
        assert "3.shortcut.1.running_mean" in net.state_dict()
        again = model_from_config(net.config())
    again.load_state_dict(net.state_dict())
    x = backend.asarray(_x((2, 1, 8, 8)), "float32")
    net.eval(), again.eval()
    np.testing.assert_array_equal(backend.to_numpy(net(x)), backend.to_numpy(again(x)))
    cfg = net.config()["layers"][3]
    assert cfg["type"] == "residual" and cfg["activation"] == "relu" and len(cfg["shortcut"]) == 2
    assert "shortcut" not in net.config()["layers"][4]


def test_residual_trains_in_a_sequential(backend):
    from xnet.losses import get_loss
    from xnet.optim import get_optimizer

    with build_on(backend, "float32"):
        net, loss = _net(), get_loss("cross-entropy")
    net.needs_input_grad = False
    opt = get_optimizer("adam", net.parameters(), lr=1e-2)
    x = backend.asarray(_x((16, 1, 8, 8), 4), "float32")
    y = backend.asarray(np.arange(16) % 3, "int64")
    losses = []
    for _ in range(30):
        net.zero_grad()
        losses.append(float(backend.to_numpy(loss.forward(net.forward(x), y))))
        net.backward(loss.backward())
        opt.step()
    assert losses[-1] < 0.5 * losses[0]


def test_shape_mismatch_names_both_shapes():
    block = Residual([Conv2D(2, 4, 3, padding=1)])
    with pytest.raises(ValueError, match=r"Residual: the body gives shape \(4, 5, 5\) per sample but the identity "
                                         r"shortcut \(the block's input\) gives \(2, 5, 5\); add a 1x1 conv"):
        block.forward(np.zeros((1, 2, 5, 5), np.float32))
    net = Sequential(Flatten(), Residual([Dense(4, 3)], [Dense(4, 2)]))
    with pytest.raises(ValueError, match=r"^layer 1 \(Residual\): the body gives shape \(3,\) per sample "
                                         r"but the shortcut gives \(2,\)$"):
        net.build((4,))


def test_bad_arguments():
    with pytest.raises(TypeError, match="Residual: body must be a Module or a non-empty list of them"):
        Residual([])
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        Residual([ReLU()], activation="nope")
    with pytest.raises(ValueError, match=r"model.layers\[0\]: unknown argument 'stride' for layer type 'residual'"):
        model_from_config({"layers": [{"type": "residual", "layers": [{"type": "relu"}], "stride": 2}]})
    with pytest.raises(ValueError, match=r"model.layers\[0\]: 'layers' must be a non-empty list"):
        model_from_config({"layers": [{"type": "residual"}]})
