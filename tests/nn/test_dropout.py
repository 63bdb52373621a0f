"""Dropout: identity in eval and for p=0, kept fraction and scaling, fixed-mask gradients."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import gradient_check

from xnet.backends import get_backend
from xnet.nn.dropout import Dropout
from xnet.nn.module import Module, build_on


class Reseeded(Module):
    """Reseeds the backend's rng before every forward, so dropout draws the same mask each time."""

    def __init__(self, inner: Module, seed: int = 123):
        super().__init__()
        self.inner, self.seed = inner, seed

    def forward(self, x):
        self.inner.backend.rng.seed(self.seed)
        return self.inner.forward(x)

    def backward(self, grad_out):
        return self.inner.backward(grad_out)


def test_eval_and_p0_are_identity(backend, dtype):
    x = backend.asarray(np.random.default_rng(0).standard_normal((4, 5)), dtype)
    with build_on(backend, dtype):
        drop, none = Dropout(0.5), Dropout(0.0)
    drop.eval()
    assert drop.forward(x) is x and none.forward(x) is x
    g = backend.asarray(np.ones((4, 5)), dtype)
    assert drop.backward(g) is g and none.backward(g) is g


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_training_keeps_one_minus_p_and_preserves_the_mean(backend, dtype, p):
    backend.rng.seed(1)
    x = backend.ones((200, 500), dtype)
    with build_on(backend, dtype):
        drop = Dropout(p)
    y = backend.to_numpy(drop.forward(x))
    assert y.dtype == np.dtype(dtype)
    kept = y != 0
    # 100 000 Bernoulli draws: std of the kept fraction is below 0.0016
    assert abs(kept.mean() - (1 - p)) < 0.01
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.01 / (1 - p)


def test_backward_uses_the_forward_mask(backend, dtype):
    backend.rng.seed(2)
    x = np.random.default_rng(3).uniform(1, 2, (6, 7))
    g = np.random.default_rng(4).standard_normal((6, 7))
    with build_on(backend, dtype):
        drop = Dropout(0.3)
    y = backend.to_numpy(drop.forward(backend.asarray(x, dtype)))
    dx = backend.to_numpy(drop.backward(backend.asarray(g, dtype)))
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(dx, g * (y / x), rtol=tol, atol=tol)  # y / x is the scaled mask
    assert 0 < (y == 0).sum() < y.size


def test_mask_comes_from_the_seeded_rng():
    x = np.ones((5, 8), np.float32)
    outs = []
    for spec in ("cpu", "strict", "cpu"):
        b = get_backend(spec, seed=0)
        with build_on(b):
            drop = Dropout(0.5)
        b.rng.seed(7)
        outs.append(b.to_numpy(drop.forward(b.asarray(x))))
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])
    b.rng.seed(8)
    assert not np.array_equal(outs[0], b.to_numpy(drop.forward(b.asarray(x))))


def test_gradient_check_with_a_fixed_mask(backend):
    with build_on(backend, "float64"):
        layer = Reseeded(Dropout(0.4))
    x = backend.asarray(np.random.default_rng(5).standard_normal((3, 5)), "float64")
    gradient_check(layer, x, backend)
    mask = backend.to_numpy(layer.forward(x)) != 0
    assert 0 < mask.sum() < mask.size  # some units were really dropped


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, "0.5", True])
def test_bad_p(p):
    with pytest.raises(ValueError, match=r"Dropout: p must be a number in \[0, 1\)"):
        Dropout(p)


def test_config_and_backward_before_forward(backend):
    with build_on(backend):
        drop = Dropout(0.25)
    assert drop.config() == {"type": "dropout", "p": 0.25} and repr(drop) == "Dropout(p=0.25)"
    with pytest.raises(RuntimeError, match="Dropout: backward called before forward"):
        drop.backward(backend.ones((2, 2)))
