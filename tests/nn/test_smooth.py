"""GELU (both forms), SiLU, ELU(alpha), Softplus(beta, threshold): references, gradients, tails, configs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import gradient_check

from xnet.nn.activations import get_activation
from xnet.nn.module import build_on
from xnet.nn.smooth import ELU, GELU, SiLU, Softplus
from xnet.nn.special import normal_cdf


def _x(shape=(3, 7), seed=0, scale=3.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def _softplus(x, beta, threshold):
    return np.where(beta * x > threshold, x, np.log1p(np.exp(beta * x)) / beta)


CASES = {
    "gelu": (lambda: GELU(), lambda x: x * 0.5 * np.vectorize(math.erfc)(-x / math.sqrt(2))),
    "gelu_tanh": (lambda: GELU(approximate="tanh"), _gelu_tanh),
    "silu": (lambda: SiLU(), lambda x: x / (1 + np.exp(-x))),
    "elu_0.3": (lambda: ELU(alpha=0.3), lambda x: np.where(x > 0, x, 0.3 * np.expm1(np.minimum(x, 0)))),
    "softplus_2_3": (lambda: Softplus(beta=2.0, threshold=3.0), lambda x: _softplus(x, 2.0, 3.0)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_the_formula(backend, name):
    make, ref = CASES[name]
    x = _x()
    with build_on(backend, "float64"):
        layer = make()
    out = backend.to_numpy(layer.forward(backend.asarray(x, "float64")))
    np.testing.assert_allclose(out, ref(x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_check(backend, name):
    make, _ = CASES[name]
    x = _x((2, 3, 4), seed=1)
    x = np.where(np.abs(x - 1.5) < 0.05, 1.0, x)  # away from softplus's threshold switch at beta x = 3
    with build_on(backend, "float64"):
        layer = make()
    gradient_check(layer, backend.asarray(x, "float64"), backend)


def test_gelu_keeps_relative_precision_in_the_far_negative_tail(backend):
    x = np.array([[-5.0, -8.0, -12.0, -20.0, -30.0]])
    with build_on(backend, "float64"):
        y = backend.to_numpy(GELU().forward(backend.asarray(x, "float64")))
    ref = x * 0.5 * np.vectorize(math.erfc)(-x / math.sqrt(2))
    np.testing.assert_allclose(y, ref, rtol=1e-12)  # 1 - erf would be all rounding noise here
    cdf = backend.to_numpy(normal_cdf(backend.xp, backend.asarray(np.linspace(-9, 9, 401), "float64")))
    exact = 0.5 * np.vectorize(math.erfc)(-np.linspace(-9, 9, 401) / math.sqrt(2))
    np.testing.assert_allclose(cdf, exact, rtol=1e-12)


def test_no_overflow_for_large_inputs(backend):
    x = np.array([[-800.0, -50.0, 50.0, 800.0]])
    for make in (GELU, SiLU, ELU, Softplus, lambda: Softplus(threshold=1e9)):
        with build_on(backend, "float64"):
            layer = make()
        with np.errstate(over="raise", invalid="raise"):
            y = backend.to_numpy(layer.forward(backend.asarray(x, "float64")))
            g = backend.to_numpy(layer.backward(backend.asarray(np.ones_like(x), "float64")))
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(g))
        np.testing.assert_allclose(y[0, 3], 800.0)  # every one of them is x for large x
        np.testing.assert_allclose(g[0, 3], 1.0)


def test_configs_round_trip_and_bad_arguments():
    for layer in (GELU(), GELU("tanh"), SiLU(), ELU(0.5), Softplus(2.0, 10.0)):
        cfg = layer.config()
        args = {k: v for k, v in cfg.items() if k != "type"}
        again = get_activation(cfg["type"], **args)
        assert type(again) is type(layer) and again.config() == cfg
    assert get_activation("swish").config() == {"type": "silu"}
    with pytest.raises(ValueError, match="GELU: approximate must be 'none' or 'tanh', got 'fast'"):
        GELU("fast")
    with pytest.raises(ValueError, match="Softplus: beta must be a finite positive number, got 0"):
        Softplus(beta=0)
    with pytest.raises(TypeError, match="ELU: alpha must be a number"):
        ELU(alpha="1")
