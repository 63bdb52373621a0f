"""Same seed, same numbers on every backend: a short training, and a run resumed on another device.

numpy is the reference. The random numbers (shuffles, dropout masks, augmentation shifts) must be
identical; what is computed from them may differ by floating-point rounding only (summation order
in products and reductions; cos and sin in the augmentation's rotation).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_trainer import StopAfter

from xnet.backends import get_backend
from xnet.data import Augment, DataLoader
from xnet.losses import CrossEntropy
from xnet.models import build_cnn, build_mlp
from xnet.nn import Dropout, build_on
from xnet.optim import Adam
from xnet.train import Trainer, load_checkpoint

# After 8 steps, numpy against strict (other summation orders, NumPy's threads) measured relative differences
# up to 5.3e-6 (float32) and 2.4e-14 (float64) in the weights; the bounds leave room for other libraries'
# rounding (cuBLAS, CUDA's cos and sin)
TOLERANCE = {"float32": 2e-4, "float64": 1e-10}


def images(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((n, 1, 12, 12)).astype(np.float32), rng.integers(0, 4, n)


def train_steps(spec: str, dtype: str) -> dict[str, list[np.ndarray]]:
    """Two epochs of a BN + dropout CNN on augmented, shuffled batches; what each step drew and computed."""
    backend = get_backend(spec)
    backend.rng.seed(5)  # the fixture's backend comes seeded 0
    with build_on(backend, dtype):
        model = build_cnn((1, 12, 12), 4, channels=(3, 4), dense=8, dropout=0.3, batch_norm=True)
        loss = CrossEntropy()
    opt = Adam(model.parameters(), lr=0.01)
    dropout = next(m for m in model.modules() if isinstance(m, Dropout))
    loader = DataLoader(*images(), 10, backend, seed=5, augment=Augment(2, 15), dtype=dtype)
    seen: dict[str, list[np.ndarray]] = {"order": [], "batch": [], "mask": [], "loss": [], "weights": []}
    to_np = backend.to_numpy
    for epoch in (1, 2):
        backend.rng.seed(5, epoch)  # as the Trainer does at each epoch's start
        loader.set_epoch(epoch)
        seen["order"].append(to_np(loader.permutation(epoch)))
        for xb, yb in loader:
            out = model.forward(xb)
            value = loss.forward(out, yb)
            opt.zero_grad()
            model.backward(loss.backward())
            opt.step()
            seen["batch"].append(to_np(xb))
            seen["mask"].append(to_np(dropout._mask))
            seen["loss"].append(np.array(backend.item(value)))
    seen["weights"] = [to_np(p.data) for p in model.parameters()]
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
