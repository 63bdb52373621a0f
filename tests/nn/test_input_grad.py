"""needs_input_grad: a Sequential whose input is data skips the first layer's input gradient."""

from __future__ import annotations

import numpy as np

from xnet.nn import Dense, Flatten, ReLU, Sequential
from xnet.nn.module import build_on


def _model_and_batch(backend):
    with build_on(backend, "float64"):
        backend.rng.seed(3)
        model = Sequential(Flatten(), Dense(6, 5), ReLU(), Dense(5, 3))
    x = backend.rng.normal((4, 2, 3), dtype="float64")
    g = backend.rng.normal((4, 3), dtype="float64")
    return model, x, g


def _grads(backend, model):
    return [backend.to_numpy(p.grad).copy() for p in model.parameters()]


def test_skipping_the_input_gradient_keeps_parameter_gradients(backend):
    model, x, g = _model_and_batch(backend)
    model.forward(x)
    dx = model.backward(g)
    assert dx.shape == (4, 2, 3)
    full = _grads(backend, model)

    model.zero_grad()
    model.needs_input_grad = False
    assert model.layers[1].needs_input_grad is False  # the first layer with parameters
    assert model.layers[3].needs_input_grad is True
    model.forward(x)
    assert model.backward(g) is None
    for a, b in zip(full, _grads(backend, model), strict=True):
        np.testing.assert_array_equal(a, b)

    model.needs_input_grad = True  # back on: the first Dense computes dx again
    assert model.layers[1].needs_input_grad is True
    model.forward(x)
    np.testing.assert_array_equal(backend.to_numpy(model.backward(g)), backend.to_numpy(dx))


def test_dense_alone_returns_none_without_input_gradient(backend):
    with build_on(backend, "float32"):
        layer = Dense(3, 2)
    layer.needs_input_grad = False
    layer.forward(backend.ones((2, 3), "float32"))
    assert layer.backward(backend.ones((2, 2), "float32")) is None
    np.testing.assert_array_equal(backend.to_numpy(layer.weight.grad), np.full((3, 2), 2.0))


def test_append_moves_the_switch_to_the_new_first_trained_layer(backend):
    with build_on(backend, "float32"):
        model = Sequential(Flatten(), ReLU())
        model.needs_input_grad = False
        dense = Dense(4, 2)
        model.append(dense)
    assert dense.needs_input_grad is False
    x = backend.ones((3, 2, 2), "float32")
    model.forward(x)
    assert model.backward(backend.ones((3, 2), "float32")) is None
    np.testing.assert_array_equal(backend.to_numpy(dense.weight.grad), np.full((4, 2), 3.0))


def test_a_model_without_parameters_runs_no_backward_layer(backend):
    with build_on(backend, "float32"):
        model = Sequential(Flatten(), ReLU())
    model.needs_input_grad = False
    model.forward(backend.ones((2, 2, 2), "float32"))
    assert model.backward(backend.ones((2, 4), "float32")) is None


def test_trainer_turns_the_input_gradient_off_while_fitting_and_back_on_after(backend):
    from xnet.losses import CrossEntropy
    from xnet.optim import SGD
    from xnet.train import Trainer

    model, x, _ = _model_and_batch(backend)
    with build_on(backend, "float64"):
        loss = CrossEntropy()
    seen = []
    first = model.layers[1]
    backward = first.backward

    def spy(grad_out):
        seen.append(first.needs_input_grad)
        return backward(grad_out)

    first.backward = spy
    model.fuse = False  # a fused Dense -> activation step calls the Dense's body, not this spy
    trainer = Trainer(model, loss, SGD(model.parameters(), lr=0.1), backend=backend)
    xs = np.random.default_rng(0).normal(size=(8, 2, 3))
    trainer.fit((xs, np.arange(8) % 3), epochs=1, batch_size=4)
    assert seen == [False, False]
    assert model.needs_input_grad is True and first.needs_input_grad is True


def test_conv_first_layer_skips_its_input_gradient_with_the_same_parameter_gradients(backend):
    from xnet.nn import Conv2D, MaxPool2D

    with build_on(backend, "float64"):
        backend.rng.seed(5)
        model = Sequential(Conv2D(1, 2, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(), Dense(8, 3))
    x = backend.rng.normal((2, 1, 4, 4), dtype="float64")
    g = backend.rng.normal((2, 3), dtype="float64")
    model.forward(x)
    assert model.backward(g).shape == (2, 1, 4, 4)
    full = _grads(backend, model)
    model.zero_grad()
    model.needs_input_grad = False
    assert model.layers[0].needs_input_grad is False
    model.forward(x)
    assert model.backward(g) is None
    for a, b in zip(full, _grads(backend, model), strict=True):
        np.testing.assert_array_equal(a, b)
