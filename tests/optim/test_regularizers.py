"""L1/L2 regularisers and gradient clipping against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xnet.nn.parameter import Parameter
from xnet.optim import L1, L2, clip_grad_norm, clip_grad_value, grad_norm, total_penalty

W = np.array([[1.0, -2.0], [0.0, 3.0]])
B = np.array([0.5, -4.0])
GW = np.array([[0.1, 0.2], [-0.3, 0.4]])
GB = np.array([1.0, -1.0])


def params(backend):
    w = Parameter(backend.asarray(W.copy(), "float64"), "weight", regularize=True)
    b = Parameter(backend.asarray(B.copy(), "float64"), "bias", regularize=False)
    w.grad = backend.asarray(GW.copy(), "float64")
    b.grad = backend.asarray(GB.copy(), "float64")
    return w, b


def host(backend, a):
    return backend.to_numpy(a)


def test_l2_penalty_and_gradient(backend):
    w, b = params(backend)
    reg = L2(0.1)
    assert float(host(backend, reg.penalty([w, b]))) == pytest.approx(0.05 * 14.0, rel=1e-14)
    reg.apply([w, b])
    np.testing.assert_allclose(host(backend, w.grad), GW + 0.1 * W, rtol=1e-14)
    np.testing.assert_array_equal(host(backend, b.grad), GB)  # bias untouched by default
    np.testing.assert_array_equal(host(backend, w.data), W)  # weights themselves untouched


def test_l1_penalty_and_gradient(backend):
    w, b = params(backend)
    reg = L1(0.01)
    assert float(host(backend, reg.penalty([w, b]))) == pytest.approx(0.01 * 6.0, rel=1e-14)
    reg.apply([w, b])
    # sign(0) = 0: no push on an exactly-zero weight
    np.testing.assert_allclose(host(backend, w.grad), GW + 0.01 * np.array([[1, -1], [0, 1]]))
    np.testing.assert_array_equal(host(backend, b.grad), GB)


def test_include_all_penalises_biases(backend):
    w, b = params(backend)
    reg = L2(0.2, include_all=True)
    expect = 0.1 * ((W**2).sum() + (B**2).sum())
    assert float(host(backend, reg.penalty([w, b]))) == pytest.approx(expect, rel=1e-14)
    reg.apply([w, b])
    np.testing.assert_allclose(host(backend, b.grad), GB + 0.2 * B, rtol=1e-14)


def test_combined_regularizers(backend):
    w, b = params(backend)
    regs = [L1(0.01), L2(0.1)]
    total = total_penalty(regs, [w, b])
    assert float(host(backend, total)) == pytest.approx(0.06 + 0.7, rel=1e-14)
    for r in regs:
        r.apply([w, b])
    np.testing.assert_allclose(
        host(backend, w.grad), GW + 0.01 * np.sign(W) + 0.1 * W, rtol=1e-14
    )


def test_penalty_without_weights_is_zero(backend):
    _, b = params(backend)
    assert L2(0.1).penalty([b]) == 0.0
    assert total_penalty([], [b]) == 0.0


def test_regularizer_bad_lambda():
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"L2: lam must be .* got"):
            L2(bad)
    with pytest.raises(ValueError, match="L1: lam"):
        L1(-1)


# -- clipping -------------------------------------------------------------------------------------


def test_grad_norm(backend):
    w, b = params(backend)
    expect = math.sqrt((GW**2).sum() + (GB**2).sum())
    assert float(host(backend, grad_norm([w, b]))) == pytest.approx(expect, rel=1e-14)
    assert grad_norm([]) == 0.0


def test_clip_grad_norm_scales_when_above(backend):
    w, b = params(backend)
    norm = math.sqrt((GW**2).sum() + (GB**2).sum())  # sqrt(2.3) ~ 1.52
    got = clip_grad_norm([w, b], 0.5)
    assert float(host(backend, got)) == pytest.approx(norm, rel=1e-14)
    scale = 0.5 / (norm + 1e-6)
    np.testing.assert_allclose(host(backend, w.grad), GW * scale, rtol=1e-14)
    np.testing.assert_allclose(host(backend, b.grad), GB * scale, rtol=1e-14)
    new = math.sqrt((host(backend, w.grad) ** 2).sum() + (host(backend, b.grad) ** 2).sum())
    assert new == pytest.approx(0.5, rel=1e-5)


def test_clip_grad_norm_leaves_small_gradients(backend):
    w, b = params(backend)
    clip_grad_norm([w, b], 10.0)
    np.testing.assert_array_equal(host(backend, w.grad), GW)
    np.testing.assert_array_equal(host(backend, b.grad), GB)


def test_clip_grad_value(backend):
    w, b = params(backend)
    clip_grad_value([w, b], 0.25)
    np.testing.assert_array_equal(host(backend, w.grad), [[0.1, 0.2], [-0.25, 0.25]])
    np.testing.assert_array_equal(host(backend, b.grad), [0.25, -0.25])


def test_clip_bad_thresholds(backend):
    w, b = params(backend)
    with pytest.raises(ValueError, match="max_norm.*got 0"):
        clip_grad_norm([w, b], 0)
    with pytest.raises(ValueError, match=r"clip_value.*got -1\.0"):
        clip_grad_value([w, b], -1.0)


def test_optimizer_penalty_and_config(backend):
    from xnet.optim import SGD

    w, b = params(backend)
    opt = SGD([w, b], lr=0.1, regularizers=[L1(0.01), L2(0.1)], clip_norm=2.0)
    assert float(host(backend, opt.penalty())) == pytest.approx(0.06 + 0.7, rel=1e-14)
    assert SGD([w, b], lr=0.1).penalty() == 0.0
    cfg = opt.config()
    assert cfg["type"] == "sgd" and cfg["lr"] == 0.1 and cfg["clip_norm"] == 2.0
    assert cfg["regularizers"] == [{"type": "l1", "lam": 0.01}, {"type": "l2", "lam": 0.1}]
