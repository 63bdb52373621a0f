"""Trainer: learning, exact resume (epoch boundary and mid-epoch), divergence, evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.errors import DivergedError
from xnet.losses import MSE, CrossEntropy
from xnet.nn import Dense, Dropout, ReLU, Sequential, build_on
from xnet.optim import L2, SGD, Adam, get_schedule
from xnet.train import EarlyStopping, Trainer, load_checkpoint
from xnet.train.progress import Reporter


def blobs(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated Gaussian blobs in 4-D: an easy classification problem."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], dtype=np.float64)
    x = centres[y] + rng.normal(0, 0.5, (n, 4))
    return x.astype(np.float32), y.astype(np.int64)


def make(backend, dropout: float = 0.0, lr: float = 0.05, l2: float = 0.0, seed: int = 0, schedule=None):
    with build_on(backend, "float32"):
        backend.rng.seed(seed)
        layers = [Dense(4, 16, init="kaiming_uniform"), ReLU()]
        if dropout:
            layers.append(Dropout(dropout))
        model = Sequential(*layers, Dense(16, 3))
        loss = CrossEntropy()
    opt = Adam(model.parameters(), lr=lr, regularizers=[L2(l2)] if l2 else None)
    sched = get_schedule(schedule, lr, 40, steps_per_epoch=8) if schedule else None
    return Trainer(model, loss, opt, sched, backend, seed=seed, log_every=3)


def params(trainer) -> list[np.ndarray]:
    return [trainer.backend.to_numpy(p.data) for p in trainer.model.parameters()]


def test_fit_learns_and_records_history(backend):
    x, y = blobs()
    t = make(backend)
    history = t.fit((x, y), epochs=5, val=(x[:60], y[:60]), test=blobs(90, 1), batch_size=32)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5]
    last = history[-1]
    assert last["train_accuracy"] > 0.95 and last["test_accuracy"] > 0.95
    assert last["train_loss"] < history[0]["train_loss"]
    for key in ("val_loss", "val_accuracy", "test_loss", "lr", "seconds"):
        assert last[key] is not None
    assert last["lr"] == pytest.approx(0.05)


def test_reported_loss_includes_the_penalty(backend):
    x, y = blobs()
    t = make(backend, l2=0.1)
    t.fit((x, y), epochs=1, batch_size=240)
    w = [p for p in t.model.parameters() if p.regularize]
    penalty = sum(0.05 * float((backend.to_numpy(p.data).astype(np.float64) ** 2).sum()) for p in w)
    assert t.penalty() == pytest.approx(penalty, rel=1e-5)
    plain = t.evaluate((x, y)).loss - penalty
    t.optimizer.regularizers = []
    assert t.evaluate((x, y)).loss == pytest.approx(plain, rel=1e-5)


def test_schedule_sets_the_lr_each_step(backend):
    x, y = blobs()
    t = make(backend, schedule="cosine")
    history = t.fit((x, y), epochs=2, batch_size=30)  # 8 steps per epoch
    sched = t.schedule
    assert history[0]["lr"] == pytest.approx(sched.lr_at(0))
    assert history[1]["lr"] == pytest.approx(sched.lr_at(8))
    assert history[1]["lr_end"] == pytest.approx(sched.lr_at(15))


def test_resume_at_epoch_boundary_equals_uninterrupted(backend, tmp_path):
    x, y = blobs()
    full = make(backend, dropout=0.3)
    full.fit((x, y), epochs=4, batch_size=32)

    first = make(backend, dropout=0.3)
    first.checkpoint_path = tmp_path / "ck.npz"
    first.fit((x, y), epochs=2, batch_size=32)
    second = make(backend, dropout=0.3, seed=0)
    second.load_state_dict(load_checkpoint(tmp_path / "ck.npz")["trainer"])
    second.fit((x, y), epochs=4, batch_size=32)
    for a, b in zip(params(full), params(second), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [r["epoch"] for r in second.history] == [1, 2, 3, 4]


class StopAfter(Reporter):
    """Asks the trainer to stop (as Ctrl-C does) once `steps` steps of epoch `epoch` are done."""

    def __init__(self, trainer, epoch: int, steps: int):
        self.trainer, self.epoch, self.steps, self.current = trainer, epoch, steps, 0

    def epoch_start(self, epoch, epochs, steps):
        self.current = epoch

    def steps_done(self, step, loss, rate):
        if self.current == self.epoch and step >= self.steps:
            self.trainer.request_stop()


def test_interrupt_mid_epoch_then_resume_equals_uninterrupted(backend, tmp_path):
    x, y = blobs()
    full = make(backend, dropout=0.3)
    full.fit((x, y), epochs=3, batch_size=32)

    first = make(backend, dropout=0.3)
    first.checkpoint_path = tmp_path / "ck.npz"
    first.reporter = StopAfter(first, epoch=2, steps=3)
    first.fit((x, y), epochs=3, batch_size=32)
    assert first.interrupted and first.epoch == 1 and first.step_in_epoch == 3
    second = make(backend, dropout=0.3)
    second.load_state_dict(load_checkpoint(tmp_path / "ck.npz")["trainer"])
    second.fit((x, y), epochs=3, batch_size=32)
    for a, b in zip(params(full), params(second), strict=True):
        np.testing.assert_array_equal(a, b)


def test_divergence_names_epoch_and_step_and_keeps_last_good_checkpoint(backend, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (64, 4)).astype(np.float32)
    y = (x @ np.ones((4, 1)) * 100).astype(np.float32)
    with build_on(backend, "float32"):
        model = Sequential(Dense(4, 8), ReLU(), Dense(8, 1))
        loss = MSE()
    t = Trainer(model, loss, SGD(model.parameters(), lr=1e-5), backend=backend, log_every=1)
    t.checkpoint_path = tmp_path / "ck.npz"
    t.fit((x, y), epochs=1, batch_size=16)
    t.optimizer.lr = 1e9
    with pytest.raises(DivergedError, match=r"epoch 2, step \d+ of 4.*lower learning rate"):
        t.fit((x, y), epochs=3, batch_size=16)
    saved = load_checkpoint(tmp_path / "ck.npz")["trainer"]
    assert saved["epoch"] == 1
    assert all(np.isfinite(v).all() for v in saved["model"].values())


def test_evaluate_confusion_and_scores(backend):
    x, y = blobs()
    t = make(backend)
    t.meta["num_classes"] = 3
    t.fit((x, y), epochs=3, batch_size=32)
    result = t.evaluate((x, y), batch_size=50)
    pred = result.predictions
    cm = np.zeros((3, 3), int)
    for a, b in zip(y, pred, strict=True):
        cm[a, b] += 1
    np.testing.assert_array_equal(result.confusion, cm)
    assert result.accuracy == pytest.approx(np.mean(pred == y))
    k = 1
    assert result.report.precision[k] == pytest.approx(cm[k, k] / cm[:, k].sum())
    assert result.report.recall[k] == pytest.approx(cm[k, k] / cm[k, :].sum())


def test_early_stopping_stops_and_saves_best(backend, tmp_path):
    x, y = blobs()
    t = make(backend, lr=0.0001)
    t.early_stopping = EarlyStopping("val_accuracy", patience=1, min_delta=1.0)  # nothing counts as better
    t.best_path = tmp_path / "best.npz"
    t.fit((x, y), epochs=10, val=(x, y), batch_size=64)
    assert t.stopped_early and len(t.history) == 2
    assert load_checkpoint(tmp_path / "best.npz")["trainer"]["epoch"] == 1


def test_early_stopping_rules():
    es = EarlyStopping("val_loss", patience=2)
    assert es.update({"epoch": 1, "val_loss": 1.0}) == (True, False)
    assert es.update({"epoch": 2, "val_loss": 1.1}) == (False, False)
    assert es.update({"epoch": 3, "val_loss": 0.9}) == (True, False)
    assert es.update({"epoch": 4, "val_loss": 0.95}) == (False, False)
    assert es.update({"epoch": 5, "val_loss": 0.95}) == (False, True)
    assert es.best_epoch == 3
    with pytest.raises(ValueError, match="val_accuracy"):
        EarlyStopping("val_accuracy").update({"epoch": 1})


def test_fit_rejects_bad_epochs(backend):
    with pytest.raises(ValueError, match="epochs"):
        make(backend).fit(blobs(), epochs=0)
