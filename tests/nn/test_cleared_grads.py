"""Cleared gradients (Parameter.clear_grad, what zero_grad calls): zero to every reader, and the next
backward writes its gradient instead of adding it to zeros."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.losses import CrossEntropy
from xnet.nn import Conv2D, Dense, Flatten, ReLU, Sequential
from xnet.nn.module import build_on
from xnet.nn.parameter import Parameter, write_cleared_grads
from xnet.optim import SGD, Adam


def test_a_cleared_gradient_reads_as_zeros_and_the_next_one_replaces_it(backend):
    p = Parameter(backend.asarray(np.ones((2, 3)), "float32"))
    p.grad += 5.0
    array = p.grad
    p.clear_grad()
    assert p.grad_cleared
    p.add_grad(backend.asarray(np.full((2, 3), 2.0), "float32"))
    assert p.grad is array and not p.grad_cleared  # written into the same array
    np.testing.assert_array_equal(backend.to_numpy(p.grad), np.full((2, 3), 2.0))  # 2, not 5 + 2
    p.add_grad(backend.asarray(np.full((2, 3), 1.0), "float32"))
    np.testing.assert_array_equal(backend.to_numpy(p.grad), np.full((2, 3), 3.0))  # adds once written
    p.clear_grad()
    np.testing.assert_array_equal(backend.to_numpy(p.grad), np.zeros((2, 3)))  # read: the zeros written
    assert not p.grad_cleared


def test_grad_to_overwrite_is_given_once_after_a_clear(backend):
    p = Parameter(backend.asarray(np.ones(4), "float64"))
    assert p.grad_to_overwrite() is None  # not cleared: the caller must add
    p.clear_grad()
    dest = p.grad_to_overwrite()
    assert dest is p.grad and p.grad_to_overwrite() is None


def test_write_cleared_grads_zeroes_only_the_cleared(backend):
    a, b = (Parameter(backend.asarray(np.ones(3), "float32")) for _ in range(2))
    a.grad += 4.0
    b.grad += 4.0
    a.clear_grad()
    write_cleared_grads([a, b])
    assert not a.grad_cleared and not b.grad_cleared
    np.testing.assert_array_equal(backend.to_numpy(a.grad), np.zeros(3))
    np.testing.assert_array_equal(backend.to_numpy(b.grad), np.full(3, 4.0))


def _net(backend):
    with build_on(backend, "float64"):
        backend.rng.seed(3)
        return Sequential(Conv2D(1, 2, 3, padding=1), ReLU(), Flatten(), Dense(2 * 5 * 5, 6), ReLU(), Dense(6, 3))


def _batch(backend):
    rng = np.random.default_rng(0)
    x = backend.asarray(rng.standard_normal((4, 1, 5, 5)), "float64")
    return x, backend.asarray(rng.integers(0, 3, 4), "int64")


def _backward(model, loss, x, y):
    loss.forward(model.forward(x), y)
    model.backward(loss.backward())


@pytest.mark.parametrize("zero_with", ["optimizer", "model"])
def test_zero_grad_then_backward_gives_one_gradient_and_without_it_they_add(backend, zero_with):
    model = _net(backend)
    opt = Adam(model.parameters(), lr=0.01)  # flat buffers: the layers write views into one array
    zero = opt.zero_grad if zero_with == "optimizer" else model.zero_grad
    x, y = _batch(backend)
    with build_on(backend, "float64"):
        loss = CrossEntropy()
    for p in model.parameters():
        p.grad += 9.0  # stale values that zero_grad must hide
    zero()
    _backward(model, loss, x, y)
    once = [backend.to_numpy(p.grad).copy() for p in model.parameters()]
    assert all(np.abs(g).max() < 9.0 for g in once)
    _backward(model, loss, x, y)  # no zero_grad: added to the first
    for p, g in zip(model.parameters(), once, strict=True):
        np.testing.assert_allclose(backend.to_numpy(p.grad), 2 * g, rtol=1e-12, atol=1e-15)
    zero()
    _backward(model, loss, x, y)  # after zero_grad: replaced, not added
    for p, g in zip(model.parameters(), once, strict=True):
        np.testing.assert_allclose(backend.to_numpy(p.grad), g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_a_parameter_no_backward_reached_steps_with_a_zero_gradient(backend, momentum):
    model = _net(backend)
    with build_on(backend, "float64"):
        unused = Dense(3, 2)  # optimised but never run: only zero_grad decides its gradient
    opt = SGD(model.parameters() + unused.parameters(), lr=0.5, momentum=momentum)
    before = [backend.to_numpy(p.data).copy() for p in unused.parameters()]
    for p in unused.parameters():
        p.grad += 3.0
    opt.zero_grad()
    x, y = _batch(backend)
    with build_on(backend, "float64"):
        loss = CrossEntropy()
    _backward(model, loss, x, y)
    opt.step()
    for p, b in zip(unused.parameters(), before, strict=True):
        np.testing.assert_array_equal(backend.to_numpy(p.data), b)  # a stale 3 would have moved it by 1.5
        np.testing.assert_array_equal(backend.to_numpy(p.grad), np.zeros(p.shape))
