"""Batch norm: forward and running statistics against NumPy, gradient checks, modes, errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import gradient_check

from xnet.backends import get_backend
from xnet.nn.batchnorm import BatchNorm1D, BatchNorm2D
from xnet.nn.module import build_on

CASES = {
    "1d": (BatchNorm1D, (6, 3), (0,)),
    "2d": (BatchNorm2D, (4, 3, 2, 3), (0, 2, 3)),
}


def _bcast(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _reference(x, gamma, beta, eps=1e-5, axes=(0,)):
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)  # biased, as in normalisation
    return _bcast(gamma, x.ndim) * (x - mean) / np.sqrt(var + eps) + _bcast(beta, x.ndim)


def _build(backend, kind, dtype, **kwargs):
    cls, shape, axes = CASES[kind]
    with build_on(backend, dtype):
        layer = cls(shape[1], **kwargs)
    return layer, shape, axes


def _set_affine(layer, backend, seed=0):
    rng = np.random.default_rng(seed)
    C = layer.num_features
    layer.weight.data = backend.asarray(rng.uniform(0.5, 2.0, C), layer.dtype)
    layer.bias.data = backend.asarray(rng.standard_normal(C), layer.dtype)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_training_forward_matches_reference(backend, dtype, kind):
    layer, shape, axes = _build(backend, kind, dtype)
    _set_affine(layer, backend)
    x = np.random.default_rng(1).standard_normal(shape) * 3 + 2
    y = backend.to_numpy(layer.forward(backend.asarray(x, dtype)))
    assert y.dtype == np.dtype(dtype) and y.shape == shape
    gamma, beta = backend.to_numpy(layer.weight.data), backend.to_numpy(layer.bias.data)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(y, _reference(x, gamma, beta, axes=axes), rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_running_statistics_after_steps(backend, kind):
    layer, shape, axes = _build(backend, kind, "float64", momentum=0.2)
    M = np.prod(shape) // shape[1]
    mean, var = np.zeros(shape[1]), np.ones(shape[1])
    rng = np.random.default_rng(2)
    for _ in range(3):
        x = rng.standard_normal(shape) * 2 + 5
        layer.forward(backend.asarray(x, "float64"))
        mean = 0.8 * mean + 0.2 * x.mean(axis=axes)
        var = 0.8 * var + 0.2 * x.var(axis=axes) * M / (M - 1)  # unbiased, like PyTorch
    np.testing.assert_allclose(backend.to_numpy(layer.running_mean), mean, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(layer.running_var), var, rtol=1e-12)
    assert dict(layer.named_buffers()).keys() == {"running_mean", "running_var"}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_eval_uses_running_statistics_and_leaves_them(backend, dtype, kind):
    layer, shape, _ = _build(backend, kind, dtype)
    _set_affine(layer, backend)
    rng = np.random.default_rng(3)
    rm, rv = rng.standard_normal(shape[1]), rng.uniform(0.5, 2, shape[1])
    layer.running_mean = backend.asarray(rm, dtype)
    layer.running_var = backend.asarray(rv, dtype)
    x = rng.standard_normal(shape)
    layer.eval()
    y = backend.to_numpy(layer.forward(backend.asarray(x, dtype)))
    gamma, beta = backend.to_numpy(layer.weight.data), backend.to_numpy(layer.bias.data)
    nd = len(shape)
    ref = _bcast(gamma, nd) * (x - _bcast(rm, nd)) / np.sqrt(_bcast(rv, nd) + 1e-5)
    ref += _bcast(beta, nd)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(backend.to_numpy(layer.running_mean), rm, rtol=tol)
    # back in training mode the batch statistics are used again
    layer.train()
    y_train = backend.to_numpy(layer.forward(backend.asarray(x, dtype)))
    ref_train = _reference(x, gamma, beta, axes=CASES[kind][2])
    np.testing.assert_allclose(y_train, ref_train, atol=tol * 10)
    assert not np.allclose(y_train, y)


@pytest.mark.parametrize("kind", sorted(CASES))
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_gradient_check(backend, kind, training):
    layer, shape, _ = _build(backend, kind, "float64")
    _set_affine(layer, backend, seed=4)
    rng = np.random.default_rng(5)
    layer.running_mean = backend.asarray(rng.standard_normal(shape[1]), "float64")
    layer.running_var = backend.asarray(rng.uniform(0.5, 2, shape[1]), "float64")
    layer.train(training)
    x = backend.asarray(rng.standard_normal(shape) * 2 + 1, "float64")
    gradient_check(layer, x, backend, rtol=1e-5, atol=1e-7)


def test_backward_closed_form_against_autograd_free_reference(backend):
    # sums of the input gradient over each channel vanish in training mode (mean is removed)
    layer, shape, axes = _build(backend, "2d", "float64")
    layer.forward(backend.asarray(np.random.default_rng(6).standard_normal(shape), "float64"))
    g = np.random.default_rng(7).standard_normal(shape)
    dx = backend.to_numpy(layer.backward(backend.asarray(g, "float64")))
    np.testing.assert_allclose(dx.sum(axis=axes), 0.0, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(layer.bias.grad), g.sum(axis=axes), rtol=1e-12)


def test_parameters_buffers_and_config(backend):
    with build_on(backend):
        bn = BatchNorm2D(8, eps=1e-3, momentum=0.05)
    assert [p.name for p in bn.parameters()] == ["weight", "bias"]
    assert not any(p.regularize for p in bn.parameters())
    np.testing.assert_array_equal(backend.to_numpy(bn.weight.data), np.ones(8))
    np.testing.assert_array_equal(backend.to_numpy(bn.bias.data), np.zeros(8))
    np.testing.assert_array_equal(backend.to_numpy(bn.running_var), np.ones(8))
    cfg = bn.config()
    assert cfg == {"type": "batchnorm2d", "num_channels": 8, "eps": 1e-3, "momentum": 0.05}
    with build_on(backend):
        again = BatchNorm2D(**{k: v for k, v in cfg.items() if k != "type"})
        one = BatchNorm1D(5)
    assert again.config() == cfg and again.num_channels == 8
    assert one.config() == {"type": "batchnorm1d", "num_features": 5, "eps": 1e-5, "momentum": 0.1}
    state = bn.state_dict()
    assert set(state) == {"weight", "bias", "running_mean", "running_var"}


def test_state_dict_round_trip_keeps_running_statistics(backend):
    layer, shape, _ = _build(backend, "1d", "float32")
    layer.forward(backend.asarray(np.random.default_rng(8).standard_normal(shape) + 3, "float32"))
    state = layer.state_dict()
    other, _, _ = _build(backend, "1d", "float32")
    other.load_state_dict(state)
    np.testing.assert_array_equal(backend.to_numpy(other.running_mean), state["running_mean"])
    assert backend.to_numpy(other.running_mean).dtype == np.float32


@pytest.mark.parametrize(
    ("cls", "arg", "shape", "fragment"),
    [
        (BatchNorm2D, 3, (64, 1, 28, 28),
         "BatchNorm2D(num_channels=3): expected input (N, 3, H, W), got shape (64, 1, 28, 28)"),
        (BatchNorm2D, 3, (64, 3), "expected input (N, 3, H, W), got shape (64, 3)"),
        (BatchNorm1D, 4, (8, 5),
         "BatchNorm1D(num_features=4): expected input (N, 4), got shape (8, 5)"),
        (BatchNorm1D, 4, (8, 4, 2, 2), "got shape (8, 4, 2, 2)"),
        (BatchNorm1D, 4, (1, 4), "more than 1 value per channel"),
    ],
)  # fmt: skip
def test_bad_input_shapes(backend, cls, arg, shape, fragment):
    with build_on(backend):
        layer = cls(arg)
    with pytest.raises(ValueError) as e:
        layer.forward(backend.zeros(shape))
    assert fragment in str(e.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"num_features": 0}, "num_features must be a positive int"),
        ({"num_features": 3, "eps": 0}, "eps must be a positive number"),
        ({"num_features": 3, "momentum": 1.5}, "momentum must be in [0, 1]"),
    ],
)
def test_bad_constructor_arguments(kwargs, fragment):
    with pytest.raises(ValueError) as e:
        BatchNorm1D(**kwargs)
    assert fragment in str(e.value)


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="BatchNorm1D: backward called before forward"):
        BatchNorm1D(3).backward(None)


def test_same_outputs_on_numpy_and_strict():
    x = np.random.default_rng(9).standard_normal((4, 3, 2, 2)).astype(np.float32)
    g = np.random.default_rng(10).standard_normal((4, 3, 2, 2)).astype(np.float32)
    outs = []
    for spec in ("cpu", "strict"):
        b = get_backend(spec)
        with build_on(b):
            bn = BatchNorm2D(3)
        y = bn.forward(b.asarray(x))
        dx = bn.backward(b.asarray(g))
        outs.append([b.to_numpy(a) for a in (y, dx, bn.weight.grad, bn.running_var)])
    for a, c in zip(*outs, strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)
