"""Loss reductions: "mean", "sum" and "none" against hand-computed values, gradients, and one SGD step."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import numerical_grad

from xnet.losses import MSE, BinaryCrossEntropy, CrossEntropy, SoftmaxMSE, get_loss
from xnet.nn import Dense
from xnet.nn.module import build_on
from xnet.optim import SGD

LN2, LN3 = math.log(2.0), math.log(3.0)

# Each case: loss class, outputs, targets, the unreduced terms and d sum(terms) / d outputs, all
# worked out by hand (softmax of (0, 0) is (1/2, 1/2), of (ln 3, 0) is (3/4, 1/4); sigmoid(ln 3) = 3/4).
CASES = {
    "cross-entropy": (
        CrossEntropy, [[0.0, 0.0], [LN3, 0.0]], [0, 1],
        [LN2, 2 * LN2],  # -log(1/2), -log(1/4): one term per sample
        [[-0.5, 0.5], [0.75, -0.75]],  # softmax - one-hot
    ),
    "mse": (
        MSE, [[1.0, 2.0], [3.0, 4.0]], [[0.0, 2.0], [1.0, 1.0]],
        [[1.0, 0.0], [4.0, 9.0]],  # (y - t)^2, one term per element
        [[2.0, 0.0], [4.0, 6.0]],  # 2 (y - t)
    ),
    "softmax-mse": (
        SoftmaxMSE, [[0.0, 0.0], [LN3, 0.0]], [0, 1],
        [[0.25, 0.25], [0.5625, 0.5625]],  # (p - t)^2 with p = (1/2, 1/2) and (3/4, 1/4)
        # p * (u - sum(p u)) with u = 2 (p - t): u = (-1, 1), sum 0; u = (1.5, -1.5), sum 0.75
        [[-0.5, 0.5], [0.5625, -0.5625]],
    ),
    "bce": (
        BinaryCrossEntropy, [[0.0], [LN3]], [1.0, 0.0],
        [[LN2], [2 * LN2]],  # log(1 + e^0); ln 3 + log(1 + 1/3) = ln 4
        [[-0.5], [0.75]],  # sigmoid(z) - t
    ),
}  # fmt: skip


def _setup(backend, name, reduction):
    cls, z, t, terms, grad = CASES[name]
    with build_on(backend, "float64"):
        loss = cls(reduction=reduction)
    target = backend.asarray(np.array(t), "float64" if isinstance(t[0], list) or name == "bce" else None)
    return loss, backend.asarray(np.array(z), "float64"), target, np.array(terms), np.array(grad)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_forward_and_backward_against_hand_computed_values(backend, name, reduction):
    loss, z, target, terms, grad = _setup(backend, name, reduction)
    value = loss(z, target)
    if reduction == "none":
        np.testing.assert_allclose(backend.to_numpy(value), terms, rtol=1e-12)
        weights = np.arange(1.0, terms.size + 1).reshape(terms.shape)  # d(something) / d(each term)
        g = backend.to_numpy(loss.backward(backend.asarray(weights, "float64")))
        expected = grad * (weights[:, None] if terms.ndim == 1 else weights)
        if name == "softmax-mse":  # a term depends on its whole row: p * (u - sum(p u)) with u = 2 (p - t) * weights
            expected = np.array([[-0.75, 0.75], [1.96875, -1.96875]])  # u = (-1, 2), (4.5, -6)
        np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-15)
        return
    divide = terms.size if reduction == "mean" else 1  # mean: over the samples (CE) or the elements
    assert tuple(value.shape) == ()
    np.testing.assert_allclose(backend.item(value), terms.sum() / divide, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(loss.backward()), grad / divide, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(backend.to_numpy(loss.backward(3.0)), 3 * grad / divide, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradient_check_in_float64(backend, name, reduction):
    cls = CASES[name][0]
    rng = np.random.default_rng(3)
    if name == "bce":
        z_host, target = rng.standard_normal((4, 3)), backend.asarray(rng.uniform(0, 1, (4, 3)), "float64")
    elif name == "mse":
        z_host, target = rng.standard_normal((4, 3)), backend.asarray(rng.standard_normal((4, 3)), "float64")
    else:
        z_host, target = rng.standard_normal((4, 3)) * 2, backend.asarray(np.array([0, 2, 1, 2]))
    with build_on(backend, "float64"):
        loss = cls(reduction=reduction)
    z = backend.asarray(z_host, "float64")
    terms_shape = (4,) if name == "cross-entropy" else (4, 3)
    r = backend.asarray(rng.standard_normal(terms_shape), "float64")
    xp = backend.xp

    def scalar() -> float:
        value = loss(z, target)
        return backend.item(xp.sum(value * r) if reduction == "none" else value)

    loss(z, target)
    analytic = backend.to_numpy(loss.backward(r if reduction == "none" else None))
    np.testing.assert_allclose(analytic, numerical_grad(scalar, z, backend), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("name", "terms_per_sample"), [("cross-entropy", 1), ("mse", 3), ("bce", 3)])
def test_one_sgd_step_with_sum_is_mean_at_a_larger_learning_rate(backend, name, terms_per_sample):
    """Summing N samples' losses (N * K terms for the elementwise losses) is the mean with N (N * K) times the lr."""
    rng = np.random.default_rng(0)
    N = 5
    x = backend.asarray(rng.standard_normal((N, 4)), "float64")
    y = rng.integers(0, 3, N) if name == "cross-entropy" else rng.uniform(0, 1, (N, 3))
    y = backend.asarray(y, None if name == "cross-entropy" else "float64")
    weights = []
    for reduction, lr in (("sum", 0.01), ("mean", 0.01 * N * terms_per_sample)):
        with build_on(backend, "float64"):
            backend.rng.seed(1)
            model = Dense(4, 3)
            loss = get_loss(name, reduction=reduction)
        opt = SGD(model.parameters(), lr=lr)
        opt.zero_grad()
        loss(model.forward(x), y)
        model.backward(loss.backward())
        opt.step()
        weights.append([backend.to_numpy(p.data).copy() for p in model.parameters()])
    for w_sum, w_mean in zip(*weights, strict=True):
        np.testing.assert_allclose(w_sum, w_mean, rtol=1e-12, atol=1e-15)
    with build_on(backend, "float64"):
        backend.rng.seed(1)
        untouched = Dense(4, 3)
    assert not np.allclose(weights[0][0], backend.to_numpy(untouched.weight.data))  # the step did move


def test_bad_reductions_and_backward_misuse(backend):
    with pytest.raises(ValueError, match=r"CrossEntropy: reduction must be one of 'mean', 'sum', 'none', got 'avg'"):
        CrossEntropy(reduction="avg")
    with pytest.raises(TypeError, match="MSE: reduction must be one of"):
        MSE(reduction=None)
    with pytest.raises(TypeError, match="unknown option"):
        get_loss("bce", label_smoothing=0.1)
    loss, z, target, terms, _ = _setup(backend, "cross-entropy", "none")
    loss(z, target)
    with pytest.raises(ValueError, match=r"reduction='none' the loss is \(2,\) terms.*backward\(grad\)"):
        loss.backward()
    with pytest.raises(ValueError, match=r"grad must have the shape of the terms \(2,\), got \(3,\)"):
        loss.backward(backend.asarray(np.ones(3), "float64"))
    with pytest.raises(ValueError, match="reduction='none' gives the terms"):
        loss.mean_factor()
    loss, z, target, _, _ = _setup(backend, "mse", "sum")
    loss(z, target)
    with pytest.raises(ValueError, match=r"the loss is one number \(sum\), so grad must be a scalar"):
        loss.backward(backend.asarray(np.ones(2), "float64"))
    assert loss.mean_factor() == 0.25 and loss.config() == {"type": "mse", "reduction": "sum"}
    assert CrossEntropy(label_smoothing=0.1).config() == {"type": "cross-entropy", "label_smoothing": 0.1}
