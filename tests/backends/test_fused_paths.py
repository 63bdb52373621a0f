"""Each backend's fused paths against the Array API reference, on the backend's own device.

On CuPy (a GPU machine) the fused CUDA kernels, on NumPy the compiled CPU kernels (Numba), run and
are held to the reference body run on the same device; strict has no fused kernels, so there the
tests check that it keeps the reference (which defines the numbers everywhere).
"""

from __future__ import annotations

import numpy as np
import pytest

from xnet.backends.cpu_kernels import loader
from xnet.losses import CrossEntropy
from xnet.nn import Dropout, ReLU

TOL = {"float32": {"rtol": 1e-5, "atol": 1e-6}, "float64": {"rtol": 1e-12, "atol": 1e-13}}


# (7, 300, 151): large enough for the CPU kernel to share it out in chunks whose words start mid-block
@pytest.mark.parametrize("shape", [(64, 300), (3, 4, 5, 6), (7, 300, 151)])
def test_dropout_equals_the_reference_draw_bit_for_bit(backend, dtype, shape):
    x = backend.asarray(np.random.default_rng(0).normal(size=shape), dtype)
    backend.rng.seed(11)
    layer = Dropout(0.3).to(backend, dtype)
    out = layer(x)
    state = backend.rng.state_dict()
    backend.rng.seed(11)  # the reference: the layer's body drawn by hand from the same stream
    mask = backend.rng.stream("dropout").bernoulli(shape, 0.7, x.dtype)
    mask *= 1.0 / 0.7
    np.testing.assert_array_equal(backend.to_numpy(out), backend.to_numpy(x * mask))
    np.testing.assert_array_equal(backend.to_numpy(layer.backward(x)), backend.to_numpy(x * mask))
    assert state == backend.rng.state_dict()


# (9, 32, 26, 26): large enough for the CPU kernel to share it out in chunks
@pytest.mark.parametrize("shape", [(5, 13), (9, 32, 26, 26)])
def test_relu_equals_the_reference_body_bit_for_bit(backend, dtype, shape, monkeypatch):
    x = np.random.default_rng(2).normal(size=shape)
    x.reshape(-1)[:6] = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-310]
    x = backend.asarray(x, dtype)
    g = backend.asarray(np.random.default_rng(3).normal(size=shape), dtype)
    layer = ReLU().to(backend, dtype)
    got, got_grad = layer(x), layer.backward(g)
    fused = backend.fused_relu(x)
    assert (fused is not None) == (backend.name == "numpy" and loader.kernels() is not None)
    monkeypatch.setattr(backend, "fused_relu", lambda *args: None)  # the reference body
    with np.errstate(invalid="ignore"):  # its -inf * 0 (NaN, as the kernel gives) is no news here
        want, want_grad = layer(x), layer.backward(g)
    for a, b in ((got, want), (got_grad, want_grad)):
        a, b = backend.to_numpy(a), backend.to_numpy(b)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
        assert np.array_equal(np.signbit(a), np.signbit(b))  # -0.0 kept as the reference keeps it


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("soft", [False, True], ids=["labels", "soft"])
def test_cross_entropy_equals_the_reference_body(backend, dtype, reduction, smoothing, soft, monkeypatch):
    rng = np.random.default_rng(1)
    N, K = 64, 10
    z = backend.asarray(rng.normal(size=(N, K)) * 3, dtype)
    t = rng.dirichlet(np.ones(K), N) if soft else rng.integers(0, K, N)
    t = backend.asarray(t, dtype if soft else "int64")
    g = backend.asarray(rng.normal(size=N), dtype) if reduction == "none" else None
    loss = CrossEntropy(smoothing, reduction).to(backend, dtype)
    got, got_grad = loss(z, t), loss.backward(g)
    fused = backend.fused_softmax_cross_entropy(z, t, smoothing, 1.0)
    # strict keeps the reference; NumPy's kernel takes integer labels only
    compiled = backend.name == "numpy" and not soft and loader.kernels() is not None
    assert (fused is not None) == (backend.name == "cupy" or compiled)
    assert (loss._kernels is not None) == compiled  # the kernels for this batch shape did the forward
    # the reference body, in a loss that has not asked for kernels yet
    monkeypatch.setattr(backend, "fused_softmax_cross_entropy", lambda *args: None)
    monkeypatch.setattr(backend, "fused_cross_entropy", lambda *args: None)
    loss = CrossEntropy(smoothing, reduction).to(backend, dtype)
    want, want_grad = loss(z, t), loss.backward(g)
    np.testing.assert_allclose(backend.to_numpy(got), backend.to_numpy(want), **TOL[dtype])
    np.testing.assert_allclose(backend.to_numpy(got_grad), backend.to_numpy(want_grad), **TOL[dtype])


def test_cross_entropy_asks_for_its_kernels_once_per_batch_shape_and_takes_any_batch(backend, dtype, monkeypatch):
    rng = np.random.default_rng(2)
    asked = []
    real = backend.fused_cross_entropy
    monkeypatch.setattr(backend, "fused_cross_entropy", lambda *a: asked.append(a[0]) or real(*a))
    loss = CrossEntropy(0.1).to(backend, dtype)
    reference = CrossEntropy(0.1).to(backend, dtype)
    wide = backend.asarray(rng.normal(size=(16, 20)), dtype)
    batches = [
        (backend.asarray(rng.normal(size=(16, 10)), dtype), rng.integers(0, 10, 16)),
        (backend.asarray(rng.normal(size=(16, 10)), dtype), rng.integers(0, 10, 16).astype(np.int32)),
        (wide[:, :10], rng.integers(0, 10, 16).astype(np.int32)),  # logits that are not C-contiguous
        (backend.asarray(rng.normal(size=(5, 10)), dtype), rng.integers(0, 10, 5)),  # the last, shorter batch
    ]
    for z, t in batches:
        t = backend.asarray(t)
        got, got_grad = loss(z, t), loss.backward()
        with monkeypatch.context() as m:  # the Array API body
            m.setattr(backend, "fused_softmax_cross_entropy", lambda *args: None)
            m.setattr(backend, "fused_cross_entropy", lambda *args: None)
            reference._checked = ()
            want, want_grad = reference(z, t), reference.backward()
        np.testing.assert_allclose(backend.to_numpy(got), backend.to_numpy(want), **TOL[dtype])
        np.testing.assert_allclose(backend.to_numpy(got_grad), backend.to_numpy(want_grad), **TOL[dtype])
    # asked again for a new labels dtype and for the shorter batch, not for every step
    assert asked == [(16, 10), (16, 10), (5, 10)]


def test_cross_entropy_counts_the_right_predictions_as_argmax_does(backend, dtype):
    rng = np.random.default_rng(4)
    z = rng.integers(-2, 3, size=(40, 6)).astype(float)  # many ties: the first of the largest counts
    z[3, 2] = z[7, 0] = z[7, 4] = np.nan  # argmax is the first NaN
    labels = rng.integers(0, 6, 40)
    labels[3], labels[7] = 2, 0
    z, t = backend.asarray(z, dtype), backend.asarray(labels)
    loss = CrossEntropy().to(backend, dtype)
    with np.errstate(invalid="ignore"):
        loss(z, t)
    want = int(np.count_nonzero(np.argmax(backend.to_numpy(z), axis=1) == labels))
    assert int(backend.to_numpy(backend.asarray(loss.correct(z, t)))) == want
    assert (loss._hits is not None) == (backend.name == "numpy" and loader.kernels() is not None)
    other = backend.asarray(labels[::-1].copy())  # not the forward's labels: counted afresh
    assert int(backend.to_numpy(backend.asarray(loss.correct(z, other)))) == int(
        np.count_nonzero(np.argmax(backend.to_numpy(z), axis=1) == labels[::-1])
    )
