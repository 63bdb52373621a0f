"""Flatten and Reshape: values, inverse backward, -1 inference, errors, configs."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import gradient_check

from xnet.nn.module import build_on
from xnet.nn.shape import Flatten, Reshape


def test_flatten_forward_backward(backend, dtype):
    x = np.arange(2 * 3 * 4 * 5, dtype=dtype).reshape(2, 3, 4, 5)
    with build_on(backend, dtype):
        flat = Flatten()
    y = backend.to_numpy(flat.forward(backend.asarray(x)))
    assert y.shape == (2, 60) and y.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(y, x.reshape(2, 60))  # C-order, as NCHW -> N(C*H*W)
    g = np.arange(120, dtype=dtype).reshape(2, 60) * 2
    dx = backend.to_numpy(flat.backward(backend.asarray(g)))
    np.testing.assert_array_equal(dx, g.reshape(2, 3, 4, 5))
    assert flat.config() == {"type": "flatten"}


def test_flatten_keeps_2d_and_lifts_1d(backend):
    with build_on(backend):
        flat = Flatten()
    assert tuple(flat.forward(backend.zeros((4, 7))).shape) == (4, 7)
    assert tuple(flat.forward(backend.zeros((4,))).shape) == (4, 1)
    assert tuple(flat.backward(backend.zeros((4, 1))).shape) == (4,)


@pytest.mark.parametrize(
    ("target", "in_shape", "out_shape"),
    [
        ((1, 28, 28), (3, 784), (3, 1, 28, 28)),
        ((-1, 4), (2, 3, 8), (2, 6, 4)),
        ((6, -1), (2, 12), (2, 6, 2)),
        ([12], (5, 3, 4), (5, 12)),
        ((-1,), (5, 3, 4), (5, 12)),
    ],
)
def test_reshape_shapes(backend, target, in_shape, out_shape):
    x = np.random.default_rng(0).standard_normal(in_shape)
    with build_on(backend, "float64"):
        layer = Reshape(target)
    y = backend.to_numpy(layer.forward(backend.asarray(x, "float64")))
    assert y.shape == out_shape
    np.testing.assert_array_equal(y, x.reshape(out_shape))
    assert backend.to_numpy(layer.backward(backend.asarray(y, "float64"))).shape == in_shape
    assert layer.config() == {"type": "reshape", "shape": list(target)}


def test_gradient_checks(backend):
    x = backend.asarray(np.random.default_rng(1).standard_normal((2, 2, 3)), "float64")
    with build_on(backend, "float64"):
        flat, reshape = Flatten(), Reshape((3, -1))
    gradient_check(flat, x, backend)
    gradient_check(reshape, x, backend)


def test_reshape_incompatible_input(backend):
    with build_on(backend):
        layer = Reshape((5, -1))
    with pytest.raises(ValueError) as e:
        layer.forward(backend.zeros((2, 3, 4)))
    msg = str(e.value)
    assert "Reshape(shape=(5, -1))" in msg and "(3, 4) (12 values)" in msg and "(2, 3, 4)" in msg
    with pytest.raises(ValueError, match="cannot become"):
        Reshape((4, 4)).forward(backend.zeros((2, 15)))


@pytest.mark.parametrize("shape", [(-1, -1), (0, 3), (2.5,), (-2, 3), ("3",)])
def test_reshape_bad_target(shape):
    with pytest.raises(ValueError, match="Reshape: shape must hold positive ints and at most one"):
        Reshape(shape)


def test_reshape_accepts_numpy_ints_and_rejects_scalars():
    assert Reshape((np.int64(4), 2)).config() == {"type": "reshape", "shape": [4, 2]}
    with pytest.raises(TypeError, match="Reshape: shape must be a tuple of ints"):
        Reshape(5)


def test_backward_before_forward():
    for layer in (Flatten(), Reshape((2,))):
        with pytest.raises(RuntimeError, match="backward called before forward"):
            layer.backward(None)
