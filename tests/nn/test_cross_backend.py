"""The same seed and inputs give the same numbers on every backend present (numpy is the reference)."""

from __future__ import annotations

import numpy as np

from xnet.backends import get_backend
from xnet.losses import CrossEntropy
from xnet.models import build_cnn
from xnet.nn import build_on
from xnet.optim import Adam


def one_step(backend_spec: str, dtype: str):
    """Build a CNN with batch norm and dropout, run one training step; return outputs, grads, params."""
    backend = get_backend(backend_spec, seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((6, 1, 12, 12)).astype(dtype)
    y = rng.integers(0, 4, 6)
    with build_on(backend, dtype):
        backend.rng.seed(3)
        model = build_cnn((1, 12, 12), 4, channels=(3, 4), dense=8, dropout=0.3, batch_norm=True)
        loss = CrossEntropy()
    opt = Adam(model.parameters(), lr=0.01)
    out = model.forward(backend.asarray(x))
    value = loss.forward(out, backend.asarray(y))
    model.backward(loss.backward())
    grads = [backend.to_numpy(p.grad) for p in model.parameters()]
    opt.step()
    model.eval()
    after = backend.to_numpy(model.forward(backend.asarray(x)))
    return backend.to_numpy(out), backend.item(value), grads, after


def test_cnn_step_matches_numpy(backend, dtype):
    ref = one_step("cpu", dtype)
    got = one_step(backend, dtype)
    tol = {"float32": 2e-5, "float64": 1e-12}[dtype]
    np.testing.assert_allclose(got[0], ref[0], rtol=tol, atol=tol)
    assert abs(got[1] - ref[1]) <= tol * max(1.0, abs(ref[1]))
    for g, r in zip(got[2], ref[2], strict=True):
        np.testing.assert_allclose(g, r, rtol=tol * 10, atol=tol * 10)
    np.testing.assert_allclose(got[3], ref[3], rtol=tol * 10, atol=tol * 10)
