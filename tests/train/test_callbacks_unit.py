"""The callback protocol and xnet's own callbacks, driven by hand with a stand-in trainer."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from xnet.train.callbacks import (
    BestCheckpoint,
    Callback,
    CallbackError,
    CallbackList,
    HistoryCSV,
    LambdaCallback,
    as_callbacks,
)
from xnet.train.early_stopping import EarlyStopping
from xnet.train.history import COLUMNS, History


class FakeTrainer:
    """What the callbacks use of a Trainer: history, save(path), reporter.message, stopped_early."""

    def __init__(self):
        self.history = History()
        self.saved: list[tuple[str, int]] = []
        self.messages: list[str] = []
        self.stopped_early = False
        self.reporter = self
        self.epoch = 0

    def save(self, path):
        self.saved.append((path.name, self.epoch))

    def message(self, text):
        self.messages.append(text)


def record(epoch, train_loss, val_loss=None, val_accuracy=None):
    return {"epoch": epoch, "train_loss": train_loss, "train_accuracy": 0.5, "val_loss": val_loss,
            "val_accuracy": val_accuracy, "lr": 0.1, "lr_end": 0.1, "seconds": 1.0}  # fmt: skip


def run_epochs(callbacks, trainer, records):
    cbs = CallbackList(callbacks, trainer)
    cbs.on_train_begin({"epochs": len(records), "initial_epoch": 0})
    for r in records:
        trainer.epoch = r["epoch"]
        trainer.history.append(r)
        cbs.on_epoch_end(r["epoch"], r)
    cbs.on_train_end({})


def test_hooks_run_in_order_with_their_arguments():
    calls = []

    class Recorder(Callback):
        def on_train_begin(self, logs=None):
            calls.append(("begin", self.trainer is t))

        def on_epoch_end(self, epoch, logs=None):
            calls.append(("epoch", epoch, logs["train_loss"]))

    t = FakeTrainer()
    fn_calls = []
    run_epochs([Recorder(), lambda epoch, logs: fn_calls.append(epoch)], t, [record(1, 2.0), record(2, 1.0)])
    assert calls == [("begin", True), ("epoch", 1, 2.0), ("epoch", 2, 1.0)]
    assert fn_calls == [1, 2]  # a plain function is an on_epoch_end


def test_a_failing_callback_is_named_in_one_line():
    class Broken(Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyError("val_f1")

    with pytest.raises(CallbackError, match=r"callback Broken failed in on_epoch_end: KeyError: 'val_f1'") as e:
        run_epochs([Broken()], FakeTrainer(), [record(1, 1.0)])
    assert "\n" not in str(e.value)


def test_a_failing_function_is_named_by_its_name():
    def check_loss(epoch, logs):
        raise ValueError("too high")

    with pytest.raises(CallbackError, match=r"on_epoch_end=.*check_loss.*ValueError: too high"):
        run_epochs([check_loss], FakeTrainer(), [record(1, 1.0)])


def test_an_internal_callback_raises_its_own_error():
    class Disk(Callback):
        internal = True

        def on_epoch_end(self, epoch, logs=None):
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        run_epochs([Disk()], FakeTrainer(), [record(1, 1.0)])


@pytest.mark.parametrize(
    "given, match",
    [
        ([3], r"callbacks\[0\] must be a Callback or a function\(epoch, logs\), got 3 \(int\)"),
        ([Callback(), "print"], r"callbacks\[1\] must be a Callback.*'print'"),
        ([EarlyStopping], r"callbacks\[0\] is the class EarlyStopping; pass an instance"),
        (5, r"callbacks must be a list of Callback objects or functions, got 5"),
    ],
)
def test_bad_callbacks_are_refused_with_their_place(given, match):
    with pytest.raises(TypeError, match=match):
        as_callbacks(given)


def test_a_hook_that_is_no_function_is_refused():
    class Odd:
        on_epoch_end = 7

    with pytest.raises(TypeError, match=r"callbacks\[0\] \(Odd\): on_epoch_end is not callable"):
        as_callbacks([Odd()])
    with pytest.raises(TypeError, match="unknown hook 'on_step'"):
        LambdaCallback(on_step=print)


def test_duck_typed_objects_and_a_single_callback_are_accepted():
    class Duck:
        def on_epoch_end(self, epoch, logs):
            pass

    duck = Duck()
    assert as_callbacks(duck) == [duck]
    assert as_callbacks(None) == []
    only = Callback()
    assert as_callbacks(only) == [only]


def test_best_checkpoint_saves_on_each_new_best_of_val_loss():
    t = FakeTrainer()
    best = BestCheckpoint(Path("best.npz"))
    run_epochs([best], t, [record(1, 3.0, 0.9), record(2, 2.0, 0.7), record(3, 1.0, 0.8), record(4, 0.5, math.nan)])
    assert t.saved == [("best.npz", 1), ("best.npz", 2)]  # epoch 3 is worse, epoch 4's NaN never best
    assert best.state_dict() == {"best": 0.7, "best_epoch": 2}


def test_best_checkpoint_uses_train_loss_without_validation_and_maximises_accuracy():
    t = FakeTrainer()
    run_epochs([BestCheckpoint(Path("b.npz"))], t, [record(1, 3.0), record(2, 4.0), record(3, 2.0)])
    assert [e for _, e in t.saved] == [1, 3]
    t = FakeTrainer()
    best = BestCheckpoint(Path("b.npz"), monitor="val_accuracy")
    run_epochs([best], t, [record(1, 3.0, 1.0, 0.5), record(2, 3.0, 1.0, 0.7), record(3, 3.0, 1.0, 0.6)])
    assert [e for _, e in t.saved] == [1, 2]


def test_best_checkpoint_resumes_its_best():
    first = BestCheckpoint(Path("b.npz"))
    run_epochs([first], FakeTrainer(), [record(1, 1.0, 0.5)])
    second = BestCheckpoint(Path("b.npz"))
    second.load_state_dict(first.state_dict())
    t = FakeTrainer()
    run_epochs([second], t, [record(2, 1.0, 0.6)])
    assert t.saved == []  # 0.6 is not better than the 0.5 of before the resume


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_history_csv_grows_by_one_row_per_epoch_and_a_resume_rewrites_from_the_checkpoint(tmp_path):
    path = tmp_path / "history.csv"
    t = FakeTrainer()
    cb = HistoryCSV(path)
    cbs = CallbackList([cb], t)
    cbs.on_train_begin({})
    seen = []
    for e in (1, 2, 3):
        t.history.append(record(e, 1.0 / e))
        cbs.on_epoch_end(e, t.history[-1])
        seen.append([r["epoch"] for r in read_rows(path)])
    assert seen == [["1"], ["1", "2"], ["1", "2", "3"]]
    assert list(read_rows(path)[0]) == list(COLUMNS)
    # a resume from a checkpoint of epoch 2 (the file had run one row ahead): the file follows the checkpoint
    resumed = FakeTrainer()
    resumed.history = History(t.history[:2])
    cbs = CallbackList([HistoryCSV(path)], resumed)
    cbs.on_train_begin({})
    resumed.history.append(record(3, 0.25))
    cbs.on_epoch_end(3, resumed.history[-1])
    rows = read_rows(path)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and float(rows[2]["train_loss"]) == 0.25


def test_early_stopping_as_a_callback_stops_after_its_patience():
    t = FakeTrainer()
    stop = EarlyStopping("val_loss", patience=2)
    cbs = CallbackList([stop], t)
    for e, v in enumerate([1.0, 0.9, 0.95, 0.93], start=1):
        cbs.on_epoch_end(e, record(e, 1.0, v))
        if t.stopped_early:
            break
    assert e == 4 and t.stopped_early
    assert t.messages == ["early stopping: val_loss has not improved for 2 epochs (best 0.9000 at epoch 2)"]
