"""Losses: values against NumPy references, finite-difference gradients, stability, errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numerical_grad

from xnet.backends import get_backend
from xnet.losses import (
    LOSSES,
    MSE,
    BinaryCrossEntropy,
    CrossEntropy,
    SoftmaxMSE,
    get_loss,
)
from xnet.nn.module import build_on

RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((4, 3)) * 2
LABELS = np.array([0, 2, 1, 2])
ONE_HOT = np.eye(3)[LABELS]
SOFT = RNG.dirichlet(np.ones(3), size=4)


def _log_softmax(z):
    s = z - z.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def _make(backend, cls, dtype="float64", **kwargs):
    with build_on(backend, dtype):
        return cls(**kwargs)


def _check_grad(backend, loss, z_host, target, rtol=1e-6, atol=1e-8):
    """backward() against central differences of forward() with respect to the outputs."""
    z = backend.asarray(z_host, "float64")
    loss(z, target)
    analytic = backend.to_numpy(loss.backward())
    numeric = numerical_grad(lambda: backend.item(loss(z, target)), z, backend)
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol)
    return analytic


# -- cross-entropy ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["labels", "one_hot", "soft"])
def test_cross_entropy_value(backend, dtype, kind):
    q = {"labels": ONE_HOT, "one_hot": ONE_HOT, "soft": SOFT}[kind]
    target = backend.asarray(LABELS) if kind == "labels" else backend.asarray(q, dtype)
    loss = _make(backend, CrossEntropy, dtype)
    value = loss(backend.asarray(LOGITS, dtype), target)
    assert tuple(value.shape) == () and backend.to_numpy(value).dtype == np.dtype(dtype)
    expected = -(q * _log_softmax(LOGITS)).sum() / 4
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(backend.item(value), expected, rtol=tol)


def test_cross_entropy_label_smoothing_value(backend):
    loss = _make(backend, CrossEntropy, label_smoothing=0.1)
    value = backend.item(loss(backend.asarray(LOGITS, "float64"), backend.asarray(LABELS)))
    q = 0.9 * ONE_HOT + 0.1 / 3
    np.testing.assert_allclose(value, -(q * _log_softmax(LOGITS)).sum() / 4, rtol=1e-12)
    assert loss.config() == {"type": "cross-entropy", "label_smoothing": 0.1}


@pytest.mark.parametrize("kind", ["labels", "soft", "smoothed", "unnormalised"])
def test_cross_entropy_gradient(backend, kind):
    smoothing = 0.2 if kind == "smoothed" else 0.0
    loss = _make(backend, CrossEntropy, label_smoothing=smoothing)
    if kind in ("labels", "smoothed"):
        target = backend.asarray(LABELS)
    else:
        target = backend.asarray(SOFT * (1.7 if kind == "unnormalised" else 1.0), "float64")
    g = _check_grad(backend, loss, LOGITS, target)
    if kind == "labels":
        p = np.exp(_log_softmax(LOGITS))
        np.testing.assert_allclose(g, (p - ONE_HOT) / 4, rtol=1e-12)  # the fused closed form


def test_cross_entropy_is_stable_for_huge_logits(backend, dtype):
    z = backend.asarray([[1e4, 0.0, -1e4], [-1e4, 1e4, 1e4]], dtype)
    loss = _make(backend, CrossEntropy, dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        right = backend.item(loss(z, backend.asarray([0, 1])))
        wrong = backend.item(loss(z, backend.asarray([1, 0])))
        g = backend.to_numpy(loss.backward())
    # row 1 right: 0; row 2 right: log 2 (two equal top logits); wrong: 1e4 and 2e4 + log 2
    np.testing.assert_allclose(right, np.log(2) / 2, rtol=1e-5)
    np.testing.assert_allclose(wrong, (1e4 + 2e4 + np.log(2)) / 2, rtol=1e-6)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, [[0.5, -0.5, 0.0], [-0.5, 0.25, 0.25]], atol=1e-7)


@pytest.mark.parametrize("bad", [-1, 3, 7])
def test_cross_entropy_labels_out_of_range(backend, bad):
    loss = _make(backend, CrossEntropy)
    with pytest.raises(ValueError) as e:
        loss(backend.asarray(LOGITS, "float64"), backend.asarray([0, bad, 1, 2]))
    assert f"CrossEntropy(): label {bad} is outside [0, 3)" in str(e.value)


def test_cross_entropy_checks_label_values_on_every_call_and_shapes_on_every_new_signature(backend):
    loss = _make(backend, CrossEntropy)
    z = backend.asarray(LOGITS, "float64")
    loss(z, backend.asarray([0, 1, 1, 2]))
    with pytest.raises(ValueError, match="label 5 is outside"):  # the same shapes and dtypes as before
        loss(z, backend.asarray([0, 5, 1, 2]))
    loss.check_labels = False  # a trainer that checked its data set once
    loss(z, backend.asarray([0, 1, 1, 2]))
    with pytest.raises(ValueError, match=r"integer labels must have shape \(4,\)"):
        loss(z, backend.asarray([0, 1, 1]))


@pytest.mark.parametrize(
    ("z_shape", "target", "fragment"),
    [
        ((4, 3), np.array([0, 1, 2]), "integer labels must have shape (4,)"),
        ((4, 3), np.zeros((4, 2)), "got (4, 2)"),
        ((4, 3), np.zeros(4), "integer labels (4,) or a float array (4, 3), got (4,)"),
        ((4,), np.array([0, 1, 2, 0]), "expected outputs (N, K), got shape (4,)"),
    ],
)
def test_cross_entropy_shape_errors(backend, z_shape, target, fragment):
    loss = _make(backend, CrossEntropy)
    with pytest.raises(ValueError) as e:
        loss(backend.zeros(z_shape, "float64"), backend.asarray(target))
    assert "CrossEntropy()" in str(e.value) and fragment in str(e.value)


def test_cross_entropy_bad_smoothing():
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\)"):
        CrossEntropy(label_smoothing=1.0)


def test_label_check_can_be_switched_off(backend):
    loss = _make(backend, CrossEntropy)
    loss.check_labels = False  # e.g. a trainer that validated the data set once on the host
    value = backend.item(loss(backend.asarray(LOGITS, "float64"), backend.asarray([0, 5, 1, 2])))
    assert np.isfinite(value)


# -- MSE and softmax-MSE ------------------------------------------------------------------------


def test_mse_value_and_gradient(backend, dtype):
    y, t = RNG.standard_normal((3, 2)), RNG.standard_normal((3, 2))
    loss = _make(backend, MSE, dtype)
    value = backend.item(loss(backend.asarray(y, dtype), backend.asarray(t, dtype)))
    np.testing.assert_allclose(value, ((y - t) ** 2).mean(), rtol=1e-6)
    g = backend.to_numpy(loss.backward())
    assert g.dtype == np.dtype(dtype)
    np.testing.assert_allclose(g, 2 * (y - t) / 6, rtol=1e-5)
    _check_grad(backend, _make(backend, MSE), y, backend.asarray(t, "float64"))


def test_mse_column_targets_and_integer_labels(backend):
    loss = _make(backend, MSE)
    y = RNG.standard_normal((4, 1))
    t = np.array([0.5, -1.0, 2.0, 0.0])
    value = backend.item(loss(backend.asarray(y, "float64"), backend.asarray(t, "float64")))
    np.testing.assert_allclose(value, ((y[:, 0] - t) ** 2).mean(), rtol=1e-12)
    assert tuple(loss.backward().shape) == (4, 1)
    # labels with class outputs become one-hot
    value = backend.item(loss(backend.asarray(LOGITS, "float64"), backend.asarray(LABELS)))
    np.testing.assert_allclose(value, ((LOGITS - ONE_HOT) ** 2).mean(), rtol=1e-12)
    _check_grad(backend, loss, LOGITS, backend.asarray(LABELS))
    # integer values with a single output column are regression targets
    ints = np.array([1, 0, 3, 2])
    value = backend.item(loss(backend.asarray(y, "float64"), backend.asarray(ints)))
    np.testing.assert_allclose(value, ((y[:, 0] - ints) ** 2).mean(), rtol=1e-12)
    assert loss.classifies(backend.asarray(LABELS))
    assert not loss.classifies(backend.asarray(t, "float64")) and not MSE.is_classification
    with pytest.raises(ValueError, match=r"MSE\(\): expected targets of shape \(4, 3\)"):
        loss(backend.asarray(LOGITS, "float64"), backend.zeros((4, 2), "float64"))
    with pytest.raises(ValueError, match="label 3 is outside"):
        loss(backend.asarray(LOGITS, "float64"), backend.asarray([0, 3, 1, 1]))


def test_softmax_mse_value_and_gradient(backend, dtype):
    loss = _make(backend, SoftmaxMSE, dtype)
    value = backend.item(loss(backend.asarray(LOGITS, dtype), backend.asarray(LABELS)))
    p = np.exp(_log_softmax(LOGITS))
    np.testing.assert_allclose(value, ((p - ONE_HOT) ** 2).mean(), rtol=1e-6)
    _check_grad(backend, _make(backend, SoftmaxMSE), LOGITS, backend.asarray(LABELS))
    _check_grad(backend, _make(backend, SoftmaxMSE), LOGITS, backend.asarray(SOFT, "float64"))


# -- binary cross-entropy -----------------------------------------------------------------------


def test_bce_value_gradient_and_stability(backend, dtype):
    z = RNG.standard_normal((5, 1)) * 3
    t = np.array([1, 0, 1, 1, 0])
    loss = _make(backend, BinaryCrossEntropy, dtype)
    value = backend.item(loss(backend.asarray(z, dtype), backend.asarray(t)))
    s = 1 / (1 + np.exp(-z[:, 0]))
    expected = -(t * np.log(s) + (1 - t) * np.log(1 - s)).mean()
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    _check_grad(backend, _make(backend, BinaryCrossEntropy), z, backend.asarray(t))
    soft = RNG.uniform(0, 1, (3, 4))  # multi-label with soft targets
    _check_grad(backend, _make(backend, BinaryCrossEntropy), RNG.standard_normal((3, 4)),
                backend.asarray(soft, "float64"))  # fmt: skip
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        z, t = backend.asarray([1e4, -1e4, 1e4], dtype), backend.asarray([1.0, 0.0, 0.0], dtype)
        huge = loss(z, t)
        g = backend.to_numpy(loss.backward())
    np.testing.assert_allclose(backend.item(huge), 1e4 / 3, rtol=1e-6)
    np.testing.assert_allclose(g, [0.0, 0.0, 1 / 3], atol=1e-7)


def test_bce_shape_error_and_predict(backend):
    loss = _make(backend, BinaryCrossEntropy)
    with pytest.raises(ValueError, match=r"BinaryCrossEntropy\(\): expected targets of shape"):
        loss(backend.zeros((4, 2), "float64"), backend.zeros((4,), "float64"))
    pred = backend.to_numpy(loss.predict(backend.asarray([[0.3], [-2.0], [0.0]], "float64")))
    np.testing.assert_array_equal(pred, [1, 0, 0])
    assert loss.classifies(backend.zeros((3,), "float64"))


# -- registry, modes, devices -------------------------------------------------------------------


def test_get_loss_names_and_aliases(backend):
    assert LOSSES == ("cross-entropy", "mse", "softmax-mse", "bce")
    expected = {
        "cross-entropy": CrossEntropy, "cross_entropy": CrossEntropy, "CE": CrossEntropy,
        "mse": MSE, "softmax-mse": SoftmaxMSE, "softmax_mse": SoftmaxMSE,
        "bce": BinaryCrossEntropy, "binary-cross-entropy": BinaryCrossEntropy,
    }  # fmt: skip
    with build_on(backend):
        for name, cls in expected.items():
            loss = get_loss(name)
            assert type(loss) is cls and loss.backend is backend
            assert get_loss(loss.config()["type"]).config() == loss.config()
        assert get_loss("ce", label_smoothing=0.05).label_smoothing == 0.05
    with pytest.raises(ValueError, match="unknown loss 'hinge'; valid names: cross-entropy, mse"):
        get_loss("hinge")


def test_classification_flags_and_predict(backend):
    with build_on(backend):
        assert CrossEntropy().is_classification and SoftmaxMSE().is_classification
        assert BinaryCrossEntropy().is_classification and not MSE().is_classification
        ce = CrossEntropy()
    pred = ce.predict(backend.asarray(LOGITS, "float64"))
    np.testing.assert_array_equal(backend.to_numpy(pred), LOGITS.argmax(axis=1))


def test_backward_before_forward(backend):
    with build_on(backend):
        for name in LOSSES:
            with pytest.raises(RuntimeError, match="backward called before forward"):
                get_loss(name).backward()


def test_loss_moves_with_to_and_accepts_host_targets():
    with build_on("cpu", "float32"):
        loss = CrossEntropy()
    strict = get_backend("strict")
    loss.to(strict)
    assert loss.backend is strict
    value = loss(strict.asarray(LOGITS, "float32"), LABELS)  # a NumPy label array is moved over
    expected = -(ONE_HOT * _log_softmax(LOGITS)).sum() / 4
    np.testing.assert_allclose(strict.item(value), expected, rtol=1e-6)


def test_same_values_on_numpy_and_strict():
    results = []
    for spec in ("cpu", "strict"):
        b = get_backend(spec)
        row = []
        with build_on(b, "float32"):
            for name in LOSSES:
                loss = get_loss(name)
                target = b.asarray(ONE_HOT, "float32") if name == "bce" else b.asarray(LABELS)
                row.append((b.item(loss(b.asarray(LOGITS, "float32"), target)),
                            b.to_numpy(loss.backward())))  # fmt: skip
        results.append(row)
    for (v1, g1), (v2, g2) in zip(*results, strict=True):
        np.testing.assert_allclose(v1, v2, rtol=1e-6)
        np.testing.assert_allclose(g1, g2, rtol=1e-5, atol=1e-7)
