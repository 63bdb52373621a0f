"""Trainer.fit with callbacks: the hooks it calls and when, stopping from a callback, a failing callback,
best.npz and the live history.csv, and a plateau schedule that is checkpointed and resumed."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from test_trainer import blobs, make, params

from xnet.optim.plateau import PlateauSchedule
from xnet.train import Callback, CallbackError, EarlyStopping, Trainer, load_checkpoint


class Recorder(Callback):
    """Every hook call, with the arguments that identify it."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin", logs["epochs"], logs["initial_epoch"]))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch, logs["steps"]))

    def on_batch_end(self, step, logs=None):
        self.calls.append(("batch", step, logs["step_in_epoch"], round(logs["loss"], 6) > 0))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, logs["train_loss"] == self.trainer.history[-1]["train_loss"]))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", logs["epochs_completed"], logs["interrupted"]))


def test_hooks_come_in_order_and_batches_only_at_the_reporting_interval(backend):
    x, y = blobs(224)  # 7 steps of 32; make() reports every 3 steps and at an epoch's last step
    t = make(backend)
    rec = Recorder()
    t.fit((x, y), epochs=2, batch_size=32, verbose=0, callbacks=[rec])
    epoch = [("batch", 3, 3, True), ("batch", 6, 6, True), ("batch", 7, 7, True)]
    second = [(k, s + 7, i, p) for k, s, i, p in epoch]
    assert rec.calls == [
        ("train_begin", 2, 0),
        ("epoch_begin", 1, 7), *epoch, ("epoch_end", 1, True),
        ("epoch_begin", 2, 7), *second, ("epoch_end", 2, True),
        ("train_end", 2, False),
    ]  # fmt: skip


def test_a_callback_stops_training_as_ctrl_c_does_and_the_run_resumes_exactly(backend, tmp_path):
    x, y = blobs()

    class StopAt(Callback):
        def on_batch_end(self, step, logs=None):
            if logs["epoch"] == 2 and logs["step_in_epoch"] >= 3:
                self.trainer.request_stop()

    full = make(backend)
    full.fit((x, y), epochs=3, batch_size=32, verbose=0)
    t = make(backend)
    t.checkpoint_path = tmp_path / "model.npz"
    t.fit((x, y), epochs=3, batch_size=32, verbose=0, callbacks=[StopAt()])
    assert t.interrupted and t.epoch == 1
    saved = load_checkpoint(tmp_path / "model.npz")["trainer"]
    assert (saved["epoch"], saved["step_in_epoch"]) == (1, 3)
    resumed = make(backend)
    resumed.load_state_dict(saved)
    resumed.fit((x, y), epochs=3, batch_size=32, verbose=0)
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]


def test_a_callback_that_raises_ends_training_naming_it_and_keeps_the_last_checkpoint(backend, tmp_path):
    x, y = blobs()

    class Fussy(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("no val_f1 in the logs")

    t = make(backend)
    t.checkpoint_path = tmp_path / "model.npz"
    with pytest.raises(CallbackError) as e:
        t.fit((x, y), epochs=4, batch_size=32, verbose=0, callbacks=[Fussy()])
    assert str(e.value).startswith("callback Fussy failed in on_epoch_end: RuntimeError: no val_f1 in the logs")
    assert e.value.exit_code == 1
    assert load_checkpoint(tmp_path / "model.npz")["trainer"]["epoch"] == 1  # epoch 2's was not written


def test_callbacks_are_checked_before_training(backend):
    t = make(backend)
    before = params(t)
    with pytest.raises(TypeError, match=r"callbacks\[1\] must be a Callback or a function"):
        t.fit(blobs(), epochs=1, verbose=0, callbacks=[Callback(), 42])
    for a, b in zip(params(t), before, strict=True):
        np.testing.assert_array_equal(a, b)


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_history_csv_has_a_row_per_finished_epoch_while_training_runs(backend, tmp_path):
    x, y = blobs()
    t = make(backend)
    t.history_path = path = tmp_path / "history.csv"
    seen = []

    class Watch(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(len(read(path)) if path.exists() else 0)

        def on_train_end(self, logs=None):
            seen.append(len(read(path)))

    t.fit((x, y), epochs=3, batch_size=32, verbose=0, callbacks=[Watch()])
    assert seen == [0, 1, 2, 3]
    rows = read(path)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[2]["train_loss"]) == pytest.approx(t.history[2]["train_loss"])


def test_best_npz_without_validation_follows_the_training_loss(backend, tmp_path):
    x, y = blobs()
    t = make(backend, lr=0.02)
    t.best_path = tmp_path / "best.npz"
    t.fit((x, y), epochs=3, batch_size=32, verbose=0)
    losses = t.history["train_loss"]
    assert load_checkpoint(tmp_path / "best.npz")["trainer"]["epoch"] == int(np.argmin(losses)) + 1


def test_best_npz_follows_early_stopping_when_it_is_on(backend, tmp_path):
    x, y = blobs()
    t = make(backend, lr=0.02)
    t.early_stopping = EarlyStopping("val_accuracy", patience=5)
    t.best_path = tmp_path / "best.npz"
    t.fit((x, y), epochs=3, batch_size=32, val=(x[:60], y[:60]), verbose=0)
    assert load_checkpoint(tmp_path / "best.npz")["trainer"]["epoch"] == t.early_stopping.best_epoch


def plateau_trainer(backend, seed=0):
    t = make(backend, lr=0.05, seed=seed)
    # patience 0 and a threshold no loss can beat: every epoch after the first is a plateau, the lr drops each time
    t.schedule = PlateauSchedule(
        0.05, monitor="train_loss", patience=0, factor=0.5, threshold=100.0, threshold_mode="abs"
    )
    return t


def test_plateau_schedule_lowers_the_lr_and_resumes_from_its_checkpoint(backend, tmp_path):
    x, y = blobs()
    full = plateau_trainer(backend)
    full.fit((x, y), epochs=4, batch_size=32, verbose=0)
    assert full.history["lr"] == pytest.approx([0.05, 0.05, 0.025, 0.0125])
    first = plateau_trainer(backend)
    first.checkpoint_path = tmp_path / "model.npz"
    first.fit((x, y), epochs=2, batch_size=32, verbose=0)
    second = plateau_trainer(backend)
    second.load_state_dict(load_checkpoint(tmp_path / "model.npz")["trainer"])
    second.fit((x, y), epochs=4, batch_size=32, verbose=0)
    assert second.history["lr"] == full.history["lr"]
    assert second.history["train_loss"] == full.history["train_loss"]


def test_a_plateau_schedule_needs_its_metric(backend):
    t = make(backend)
    t.schedule = PlateauSchedule(0.05)  # val_loss, and no validation data
    with pytest.raises(ValueError, match=r"PlateauSchedule: monitors 'val_loss', but fit\(\) was given no validation"):
        t.fit(blobs(), epochs=1, verbose=0)


def test_lr_find_method_restores_the_trainer(backend):
    x, y = blobs()
    t = make(backend)
    before = params(t)
    result = t.lr_find((x, y), start_lr=1e-4, end_lr=1.0, steps=8, batch_size=16)
    assert len(result.lrs) == 8 and result.lrs[-1] == pytest.approx(1.0)
    for a, b in zip(params(t), before, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="start_lr must be below end_lr"):
        t.lr_find((x, y), start_lr=1.0, end_lr=1e-3)
    assert isinstance(t, Trainer)
