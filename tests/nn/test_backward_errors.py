"""Every layer's backward refuses a gradient that is not of its last output's shape, naming the layer."""

from __future__ import annotations

import re

import numpy as np
import pytest

from xnet.nn import (
    AvgPool2D,
    BatchNorm1D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Reshape,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    build_on,
)
from xnet.nn.fused import NormReLUPool

HINT = "backward takes d(loss)/d(output), e.g. loss.backward(); not the loss value"

# (layer factory, input shape, the name its errors use)
LAYERS = {
    "dense": (lambda: Dense(4, 3), (2, 4), "Dense(4, 3)"),
    "conv": (lambda: Conv2D(3, 4, 3), (2, 3, 8, 8), "Conv2D(in_channels=3)"),
    "conv_strided": (lambda: Conv2D(2, 3, 3, stride=2, padding=1), (2, 2, 7, 7), "Conv2D(in_channels=2)"),
    "maxpool2": (lambda: MaxPool2D(2), (2, 1, 6, 6), "MaxPool2D(kernel_size=2)"),
    "maxpool3": (lambda: MaxPool2D(3, stride=1), (2, 1, 5, 5), "MaxPool2D(kernel_size=3)"),
    "avgpool2": (lambda: AvgPool2D(2), (2, 1, 6, 6), "AvgPool2D(kernel_size=2)"),
    "avgpool3": (lambda: AvgPool2D(3, stride=1), (2, 1, 5, 5), "AvgPool2D(kernel_size=3)"),
    "bn1d": (lambda: BatchNorm1D(4), (3, 4), "BatchNorm1D(num_features=4)"),
    "bn2d": (lambda: BatchNorm2D(3), (2, 3, 4, 4), "BatchNorm2D(num_channels=3)"),
    "bn2d_eval": (lambda: BatchNorm2D(3).eval(), (2, 3, 4, 4), "BatchNorm2D(num_channels=3)"),
    "flatten": (Flatten, (2, 3, 4), "Flatten"),
    "reshape": (lambda: Reshape((3, 4)), (2, 12), "Reshape(shape=(3, 4))"),
    "dropout": (lambda: Dropout(0.5), (2, 4), "Dropout"),
    "dropout_eval": (lambda: Dropout(0.5).eval(), (2, 4), "Dropout"),
    "relu": (ReLU, (2, 4), "ReLU"),
    "leaky_relu": (LeakyReLU, (2, 4), "LeakyReLU"),
    "sigmoid": (Sigmoid, (2, 4), "Sigmoid"),
    "tanh": (Tanh, (2, 4), "Tanh"),
    "softmax": (Softmax, (2, 4), "Softmax"),
    "identity": (Identity, (2, 4), "Identity"),
}


def _arr(backend, shape, value=1.0):
    return backend.asarray(np.full(shape, value, np.float32), "float32")


def _forward(backend, kind):
    """A layer of `kind` after one forward pass, its output shape and its error name."""
    factory, shape, name = LAYERS[kind]
    with build_on(backend):
        layer = factory()
    x = backend.asarray(np.random.default_rng(0).standard_normal(shape).astype(np.float32), "float32")
    return layer, tuple(layer.forward(x).shape), name


def _wrong_shapes(out):
    """Shapes a careless caller might pass: other batch size, N=1 (broadcastable), other last
    axis, one axis fewer, one more."""
    return [(out[0] + 1, *out[1:]), (1, *out[1:]), (*out[:-1], out[-1] + 1), out[:-1], (*out, 1)]


@pytest.mark.parametrize("kind", list(LAYERS))
def test_a_gradient_of_another_shape_names_the_layer_and_both_shapes(backend, kind):
    layer, out, name = _forward(backend, kind)
    before = [backend.to_numpy(p.grad).copy() for p in layer.parameters()]
    for bad in _wrong_shapes(out):
        with pytest.raises(ValueError) as e:
            layer.backward(_arr(backend, bad))
        msg = str(e.value)
        assert msg.startswith(f"{name}.backward: expected a gradient of shape {out} (the shape of its last output)")
        assert msg.endswith(f"got {bad}"), msg
    # refused before any work: no parameter gradient was touched
    after = [backend.to_numpy(p.grad) for p in layer.parameters()]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    # the right shape still works
    dx = layer.backward(_arr(backend, out))
    assert tuple(dx.shape) == LAYERS[kind][1]


@pytest.mark.parametrize("kind", list(LAYERS))
def test_a_loss_value_or_none_gets_the_hint(backend, kind):
    layer, out, name = _forward(backend, kind)
    with pytest.raises(ValueError, match=re.escape(f"{name}.backward: expected a gradient of shape {out}")) as e:
        layer.backward(_arr(backend, ()))  # a 0-d array: the loss value
    assert "got a 0-d array" in str(e.value) and HINT in str(e.value)
    for bad, shown in ((None, "got None"), (0.5, "got a float"), ([[1.0]], "got a list")):
        with pytest.raises(TypeError) as e:
            layer.backward(bad)
        assert str(e.value).startswith(f"{name}.backward: expected a gradient of shape {out}")
        assert shown in str(e.value) and HINT in str(e.value)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_backward_before_forward_still_says_so(kind):
    layer = LAYERS[kind][0]()
    cls = type(layer).__name__
    with pytest.raises(RuntimeError, match=f"{cls}: backward called before forward"):
        layer.backward(np.ones((2, 4), np.float32))


def test_the_check_follows_the_last_forward(backend):
    layer, out, _ = _forward(backend, "conv")
    layer.forward(_arr(backend, (5, 3, 10, 10)))
    with pytest.raises(ValueError, match=re.escape("expected a gradient of shape (5, 4, 8, 8)")):
        layer.backward(_arr(backend, out))
    assert tuple(layer.backward(_arr(backend, (5, 4, 8, 8))).shape) == (5, 3, 10, 10)


def test_the_model_refuses_the_loss_value_with_the_hint(backend):
    with build_on(backend):
        model = Sequential(Dense(4, 3), ReLU(), Dense(3, 2))
    model.forward(_arr(backend, (5, 4)))
    with pytest.raises(ValueError) as e:
        model.backward(_arr(backend, (), 0.7))
    assert str(e.value).startswith("Dense(3, 2).backward: expected a gradient of shape (5, 2)")
    assert HINT in str(e.value)


@pytest.mark.parametrize(
    ("layers", "hw", "out_hw", "last"),
    [
        ("bn_relu_pool", (6, 6), (3, 3), "MaxPool2D(kernel_size=2)"),
        ("bn_relu", (5, 6), (5, 6), "ReLU"),
        ("relu_pool", (6, 8), (3, 4), "MaxPool2D(kernel_size=2)"),
        ("bn_relu_pool", (5, 7), (2, 3), "MaxPool2D(kernel_size=2)"),  # odd: the layers one by one
    ],
)
@pytest.mark.parametrize("input_grad", [True, False])
def test_the_fused_step_checks_its_output_shape(backend, layers, hw, out_hw, last, input_grad):
    with build_on(backend):
        parts = {"bn": BatchNorm2D(3), "relu": ReLU(), "pool": MaxPool2D(2)}
        model = Sequential(Conv2D(2, 3, 3, padding=1), *(parts[k] for k in layers.split("_")))
    model.needs_input_grad = input_grad
    assert isinstance(model._plan()[-1][1], NormReLUPool)
    model.forward(_arr(backend, (2, 2, *hw)))
    out = (2, 3, *out_hw)
    bads = [(1, *out[1:]), (4, *out[1:]), (*out[:-1], out[-1] + 1), ()]
    for bad in bads + ([(2, 3, *hw)] if hw != out_hw else []):  # the pool's input shape too
        with pytest.raises(ValueError) as e:
            model.backward(_arr(backend, bad))
        assert str(e.value).startswith(f"{last}.backward: expected a gradient of shape {out}"), str(e.value)
    dx = model.backward(_arr(backend, out))
    assert (dx is None) if not input_grad else tuple(dx.shape) == (2, 2, *hw)


def test_a_layer_without_input_gradient_still_checks_and_returns_none(backend):
    for kind in ("dense", "conv"):
        layer, out, name = _forward(backend, kind)
        layer.needs_input_grad = False
        with pytest.raises(ValueError, match=re.escape(f"{name}.backward")):
            layer.backward(_arr(backend, (1, *out[1:])))
        assert layer.backward(_arr(backend, out)) is None


@pytest.mark.parametrize("cls", [BatchNorm1D, BatchNorm2D])
@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"eps": True}, "eps must be a positive number (finite, not a bool), got True"),
        ({"eps": float("inf")}, "eps must be a positive number (finite, not a bool), got inf"),
        ({"eps": float("nan")}, "got nan"),
        ({"eps": "1e-5"}, "got '1e-5'"),
        ({"momentum": True}, "momentum must be in [0, 1] (a number, not a bool), got True"),
        ({"momentum": False}, "got False"),
        ({"momentum": float("nan")}, "momentum must be in [0, 1]"),
        ({"momentum": -0.1}, "momentum must be in [0, 1]"),
    ],
)
def test_batch_norm_refuses_bools_and_non_finite_numbers(cls, kwargs, fragment):
    with pytest.raises(ValueError) as e:
        cls(4, **kwargs)
    assert str(e.value).startswith(f"{cls.__name__}: ") and fragment in str(e.value)


def test_batch_norm_takes_numpy_numbers():
    bn = BatchNorm1D(4, eps=np.float32(1e-3), momentum=np.float64(0.5))
    assert type(bn.eps) is float and abs(bn.eps - 1e-3) < 1e-9 and bn.momentum == 0.5


@pytest.mark.parametrize("alpha", [float("nan"), float("inf"), -float("inf")])
def test_leaky_relu_refuses_a_non_finite_alpha(alpha):
    with pytest.raises(ValueError, match=f"LeakyReLU: alpha must be a finite number, got {alpha!r}"):
        LeakyReLU(alpha)


def test_leaky_relu_takes_a_numpy_alpha():
    assert LeakyReLU(np.float32(0.25)).alpha == 0.25


def test_the_model_refuses_a_second_backward_after_one_forward(backend):
    with build_on(backend):
        model = Sequential(Conv2D(1, 2, 3), BatchNorm2D(2), ReLU(), MaxPool2D(2), Flatten(), Dense(18, 2))
    x, g = _arr(backend, (3, 1, 8, 8)), _arr(backend, (3, 2))
    model.forward(x)
    with pytest.raises(ValueError):  # a wrong gradient adds nothing: the right one may follow
        model.backward(_arr(backend, (3, 5)))
    model.backward(g)
    grads = [backend.to_numpy(p.grad).copy() for p in model.parameters()]
    with pytest.raises(RuntimeError, match=r"called twice after one forward .* run forward again first"):
        model.backward(g)
    for p, before in zip(model.parameters(), grads, strict=True):  # nothing was added twice
        np.testing.assert_array_equal(backend.to_numpy(p.grad), before)
    model.forward(x)  # a new forward: its gradients add to the old ones, as in PyTorch
    model.backward(g)
    w = model.layers[-1].weight
    np.testing.assert_allclose(backend.to_numpy(w.grad), 2 * grads[-2], rtol=1e-6)
