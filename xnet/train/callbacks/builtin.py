"""xnet's own callbacks: progress display, the lr schedule's epoch hook, checkpoints and the live history.csv.

Trainer.fit puts them around the user's callbacks (xnet/train/callbacks/base.py) in this order:
progress, schedule, early stopping, the user's, best checkpoint, last checkpoint, history.csv, so a
checkpoint holds the schedule's and early stopping's state after the epoch, and history.csv never
runs ahead of the checkpoint a resume starts from.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from xnet.atomic import atomic_write_text
from xnet.train.callbacks.base import Callback
from xnet.train.history import history_csv


class ProgressCallback(Callback):
    """Shows training through a Reporter (a bar, lines or nothing: xnet/train/progress.py)."""

    internal = True

    def __init__(self, reporter: Any):
        self.reporter = reporter

    def on_epoch_begin(self, epoch, logs=None):
        self.reporter.epoch_start(epoch, logs["epochs"], logs["steps"])

    def on_batch_end(self, step, logs=None):
        self.reporter.steps_done(logs["step_in_epoch"], logs["loss"], logs["samples_per_s"])

    def on_epoch_end(self, epoch, logs=None):
        self.reporter.epoch_end(logs)

    def on_train_end(self, logs=None):
        self.reporter.close()


class ScheduleStep(Callback):
    """Feeds each epoch's record to a schedule that learns from it (PlateauSchedule) and says when the lr drops."""

    internal = True

    def __init__(self, schedule: Any):
        self.schedule = schedule

    def on_epoch_end(self, epoch, logs=None):
        before = self.schedule.lr_at(0)
        if self.schedule.epoch_end(logs):
            n = self.schedule.patience + 1
            self.trainer.reporter.message(
                f"{self.schedule.monitor} has not improved for {n} epoch{'s' * (n != 1)}: "
                f"lr {before:.3g} -> {self.schedule.lr_at(0):.3g}"
            )


class Checkpoint(Callback):
    """The trainer's state in `path` at the end of every epoch (written atomically: a crash keeps the last one)."""

    internal = True

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        self.trainer.save(self.path)
        self.trainer.cadence.saved()  # a --checkpoint-every cadence counts from this checkpoint


def default_monitor(record: dict[str, Any]) -> str:
    """val_loss when the epoch was validated, else train_loss."""
    return "val_loss" if record.get("val_loss") is not None else "train_loss"


class BestCheckpoint(Callback):
    """The trainer's state in `path` whenever `monitor` reaches its best value so far.

    monitor "auto" is val_loss when fit has validation data, else train_loss; mode "auto" maximises
    accuracies and minimises losses; a new best must beat the old by more than `min_delta` (so with
    early stopping's monitor, mode and min_delta it saves exactly when early stopping sees an
    improvement). A non-finite value is never the best. Its position (best value and epoch) is kept
    in the trainer's checkpoint, so a resumed run keeps the same best.npz.
    """

    internal = True

    def __init__(self, path: str | Path, monitor: str = "auto", mode: str = "auto", min_delta: float = 0.0):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"BestCheckpoint: mode must be auto, min or max, got {mode!r}")
        self.path, self.monitor, self.mode, self.min_delta = Path(path), monitor, mode, float(min_delta)
        self.best: float | None = None
        self.best_epoch = 0

    def _maximise(self, monitor: str) -> bool:
        return monitor.endswith("accuracy") if self.mode == "auto" else self.mode == "max"

    def on_epoch_end(self, epoch, logs=None):
        monitor = default_monitor(logs) if self.monitor == "auto" else self.monitor
        value = logs.get(monitor)
        if value is None:
            raise ValueError(f"BestCheckpoint: monitors {monitor!r}, which this training does not record")
        if not math.isfinite(value):
            return
        sign = -1.0 if self._maximise(monitor) else 1.0
        if self.best is None or sign * value < sign * self.best - self.min_delta:
            self.best, self.best_epoch = float(value), int(epoch)
            self.trainer.save(self.path)

    def state_dict(self) -> dict[str, Any]:
        """Best value and its epoch, for the trainer's checkpoint."""
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict()`."""
        self.best, self.best_epoch = state["best"], int(state["best_epoch"])


class HistoryCSV(Callback):
    """history.csv at `path`, one row added at the end of every epoch, so `tail -f` follows a run.

    The first epoch of a `fit` writes the whole file atomically from the trainer's history (a resumed
    trainer carries the rows of its checkpoint, so the file continues where the checkpoint left it, and
    a row written after the checkpoint a resume starts from is dropped); later epochs append their row
    in one write with O_APPEND, so a reader never sees half a row.
    """

    internal = True

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._whole = True

    def on_train_begin(self, logs=None):
        self._whole = True

    def on_epoch_end(self, epoch, logs=None):
        history = self.trainer.history
        if self._whole or not self.path.is_file():
            atomic_write_text(self.path, history_csv(history))
            self._whole = False
            return
        row = history_csv(history[-1:]).split("\n", 1)[1]  # the last record's line, without the header
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, row.encode())
        finally:
            os.close(fd)
