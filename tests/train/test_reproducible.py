"""Same seed, same numbers on every backend: a short training, and a run resumed on another device.

numpy is the reference. The random numbers (shuffles, dropout masks, augmentation shifts) must be
identical; what is computed from them may differ by floating-point rounding only (summation order
in products and reductions; cos and sin in the augmentation's rotation).
"""

from __future__ import annotations

import numpy as np
import pytest
from cnn_run import SEED, cnn_run, record_epoch
from test_trainer import StopAfter

from xnet.backends import get_backend
from xnet.losses import CrossEntropy
from xnet.models import build_mlp
from xnet.nn import build_on
from xnet.optim import Adam
from xnet.train import Trainer, load_checkpoint

# After 8 steps, numpy against strict (other summation orders, NumPy's threads) measured relative differences
# up to 5.3e-6 (float32) and 2.4e-14 (float64) in the weights; the bounds leave room for other libraries'
# rounding (cuBLAS, CUDA's cos and sin)
TOLERANCE = {"float32": 2e-4, "float64": 1e-10}


def train_steps(spec: str, dtype: str) -> dict[str, list[np.ndarray]]:
    """Two epochs of cnn_run's CNN; what each step drew and computed."""
    backend = get_backend(spec)
    backend.rng.seed(SEED)  # the fixture's backend comes seeded 0
    run = cnn_run(backend, dtype, n=40, batch=10)
    seen: dict[str, list[np.ndarray]] = {"order": [], "batch": [], "mask": [], "loss": [], "weights": []}
    for epoch in (1, 2):
        record_epoch(run, epoch, seen)
    seen["weights"] = [backend.to_numpy(p.data) for p in run.model.parameters()]
    return seen


def test_short_training_matches_numpy(backend, dtype):
    ref, got = train_steps("cpu", dtype), train_steps(backend, dtype)
    for key in ("order", "mask"):  # the random numbers themselves: exactly
        for g, r in zip(got[key], ref[key], strict=True):
            np.testing.assert_array_equal(g, r, err_msg=key)
    assert len(got["mask"]) == 8 and 0 < np.mean(got["mask"][0] == 0) < 0.6  # dropout did drop
    tol = TOLERANCE[dtype]
    for key in ("batch", "loss", "weights"):
        for g, r in zip(got[key], ref[key], strict=True):
            np.testing.assert_allclose(g, r, rtol=tol, atol=tol, err_msg=key)


def blobs(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, n)
    x = np.eye(3, 6)[y] * 3 + rng.normal(0, 0.5, (n, 6))
    return x.astype(np.float32), y


def trainer(spec: str) -> Trainer:
    backend = get_backend(spec)
    backend.rng.seed(2)
    with build_on(backend, "float32"):
        model = build_mlp((6,), 3, hidden=(16,), dropout=0.3)
        loss = CrossEntropy()
    return Trainer(model, loss, Adam(model.parameters(), lr=0.02), None, backend, seed=2, log_every=1)


@pytest.mark.parametrize("stop_step", [0, 2], ids=["epoch-boundary", "mid-epoch"])
def test_a_run_resumed_on_another_backend_matches_the_uninterrupted_one(backend, tmp_path, stop_step):
    data = blobs()
    full = trainer("cpu")
    full.fit(data, epochs=2, batch_size=16)

    first = trainer("cpu")
    first.checkpoint_path = tmp_path / "ck.npz"
    if stop_step:
        first.reporter = StopAfter(first, epoch=2, steps=stop_step)
    first.fit(data, epochs=2 if stop_step else 1, batch_size=16)
    assert first.epoch == 1 and first.step_in_epoch == stop_step
    resumed = trainer(backend)
    resumed.load_state_dict(load_checkpoint(tmp_path / "ck.npz")["trainer"])
    resumed.fit(data, epochs=2, batch_size=16)
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        np.testing.assert_allclose(backend.to_numpy(b.data), a.data, rtol=TOLERANCE["float32"], atol=1e-6)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
