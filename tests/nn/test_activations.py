"""Activations: forward against NumPy references, gradient checks, stability, names, configs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import gradient_check

from xnet.backends import get_backend
from xnet.nn.activations import (
    ACTIVATIONS,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    get_activation,
)
from xnet.nn.module import build_on
from xnet.nn.smooth import ELU, GELU, SiLU, Softplus


def _softmax_ref(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


REFERENCES = {
    "relu": (ReLU, lambda x: np.where(x > 0, x, 0.0)),
    "leaky_relu": (LeakyReLU, lambda x: np.where(x > 0, x, 0.01 * x)),
    "sigmoid": (Sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "tanh": (Tanh, np.tanh),
    "identity": (Identity, lambda x: x),
    "softmax": (Softmax, _softmax_ref),
    # the new smooth ones, from their textbook formulas (math.erf: an erf xnet does not use)
    "gelu": (GELU, lambda x: x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))),
    "silu": (SiLU, lambda x: x / (1 + np.exp(-x))),
    "elu": (ELU, lambda x: np.where(x > 0, x, np.exp(np.minimum(x, 0)) - 1)),
    "softplus": (Softplus, lambda x: np.log1p(np.exp(x))),
}


def _inputs(shape, seed=0):
    """Random values kept away from 0, where ReLU's kink would spoil finite differences."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.where(np.abs(x) < 0.1, 0.5, x)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_forward_matches_reference(backend, dtype, name):
    cls, ref = REFERENCES[name]
    host = _inputs((4, 5, 3)).astype(dtype)
    with build_on(backend, dtype):
        layer = cls()
    y = layer.forward(backend.asarray(host))
    out = backend.to_numpy(y)
    assert out.dtype == np.dtype(dtype) and out.shape == host.shape
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out, ref(host.astype(np.float64)), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_gradient_check(backend, name):
    with build_on(backend, "float64"):
        layer = REFERENCES[name][0]()
    gradient_check(layer, backend.asarray(_inputs((3, 4), seed=2), "float64"), backend)


def test_leaky_relu_alpha_gradient_check(backend):
    with build_on(backend, "float64"):
        layer = LeakyReLU(alpha=0.3)
    x = _inputs((3, 4), seed=5)
    y = backend.to_numpy(layer.forward(backend.asarray(x, "float64")))
    np.testing.assert_allclose(y, np.where(x > 0, x, 0.3 * x))
    gradient_check(layer, backend.asarray(x, "float64"), backend)


def test_relu_backward_is_mask_in_input_dtype(backend, dtype):
    with build_on(backend, dtype):
        relu = ReLU()
    x = np.array([[-2.0, 0.0, 3.0], [1.5, -0.5, 0.25]], dtype=dtype)
    relu.forward(backend.asarray(x))
    g = backend.to_numpy(relu.backward(backend.asarray(np.full((2, 3), 2.0, dtype=dtype))))
    assert g.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(g, [[0, 0, 2], [2, 0, 2]])


def test_sigmoid_and_softmax_are_stable_for_huge_inputs(backend, dtype):
    x = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], dtype=dtype)
    with build_on(backend, dtype):
        sig, soft, tanh = Sigmoid(), Softmax(), Tanh()
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        s = backend.to_numpy(sig.forward(backend.asarray(x)))
        p = backend.to_numpy(soft.forward(backend.asarray(x)))
        t = backend.to_numpy(tanh.forward(backend.asarray(x)))
        gs = backend.to_numpy(sig.backward(backend.asarray(np.ones_like(x))))
    np.testing.assert_allclose(s, [[0.0, 0.0, 0.5, 1.0, 1.0]], atol=1e-7)
    np.testing.assert_allclose(p, [[0.0, 0.0, 0.0, 0.0, 1.0]], atol=1e-7)
    np.testing.assert_allclose(t, [[-1.0, -1.0, 0.0, 1.0, 1.0]], atol=1e-7)
    assert np.all(np.isfinite(gs)) and gs[0, 2] == 0.25


def test_softmax_rows_sum_to_one_and_backward_is_jacobian_product(backend):
    x = np.random.default_rng(3).standard_normal((2, 4))
    g = np.random.default_rng(4).standard_normal((2, 4))
    with build_on(backend, "float64"):
        soft = Softmax()
    y = backend.to_numpy(soft.forward(backend.asarray(x, "float64")))
    np.testing.assert_allclose(y.sum(axis=1), 1.0)
    dx = backend.to_numpy(soft.backward(backend.asarray(g, "float64")))
    for n in range(2):  # the full Jacobian diag(y) - y y^T, row by row
        jac = np.diag(y[n]) - np.outer(y[n], y[n])
        np.testing.assert_allclose(dx[n], jac @ g[n], atol=1e-12)


def test_get_activation_and_config(backend):
    assert set(ACTIVATIONS) == {
        "relu", "leaky_relu", "sigmoid", "tanh", "identity", "softmax", "gelu", "silu", "elu", "softplus"
    }  # fmt: skip
    with build_on(backend):
        for name in ACTIVATIONS:
            layer = get_activation(name)
            assert isinstance(layer, REFERENCES[name][0]) and layer.backend is backend
        assert get_activation(" ReLU ").config() == {"type": "relu"}
        leaky = get_activation("leaky-relu", alpha=0.2)
        assert leaky.config() == {"type": "leakyrelu", "alpha": 0.2}
        assert get_activation(leaky.config()["type"]).alpha == 0.01
        assert Tanh().config() == {"type": "tanh"} and Softmax().config() == {"type": "softmax"}
        assert repr(leaky) == "LeakyReLU(alpha=0.2)"
    with pytest.raises(ValueError, match="unknown activation 'mish'; valid names: relu, leaky"):
        get_activation("mish")


def test_backward_before_forward_is_a_clear_error(backend):
    with build_on(backend):
        for name in ACTIVATIONS:
            layer = get_activation(name)
            with pytest.raises(RuntimeError, match="backward called before forward"):
                layer.backward(backend.ones((2, 2)))


def test_leaky_relu_rejects_non_number():
    with pytest.raises(TypeError, match="LeakyReLU: alpha must be a number"):
        LeakyReLU(alpha="0.1")


def test_same_outputs_on_numpy_and_strict():
    x = _inputs((3, 6), seed=9).astype(np.float32)
    g = np.random.default_rng(10).standard_normal((3, 6)).astype(np.float32)
    results = []
    for spec in ("cpu", "strict"):
        b = get_backend(spec)
        with build_on(b, "float32"):
            layers = [get_activation(name) for name in ACTIVATIONS]
        results.append(
            [
                (b.to_numpy(m.forward(b.asarray(x))), b.to_numpy(m.backward(b.asarray(g))))
                for m in layers
            ]
        )
    for (y1, d1), (y2, d2) in zip(*results, strict=True):
        np.testing.assert_allclose(y1, y2, rtol=1e-6)
        np.testing.assert_allclose(d1, d2, rtol=1e-6)
