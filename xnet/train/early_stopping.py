"""Early stopping on a monitored metric."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from xnet.checks import check_int
from xnet.train.callbacks.base import Callback

# the metrics of the Trainer's epoch record (Trainer._train_epoch and fit): what can be monitored
METRICS = ("val_loss", "val_accuracy", "train_loss", "train_accuracy", "test_loss", "test_accuracy")


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved for `patience` epochs.

    `monitor` is one of METRICS, the metrics of the trainer's epoch record, e.g. "val_loss" or
    "val_accuracy"; losses are minimised and accuracies maximised unless `mode` says otherwise.
    A callback of Trainer.fit (given as `Trainer(early_stopping=...)` or in `callbacks=`): training
    ends after the epoch that exhausts the patience, as a finished run (`trainer.stopped_early`).
    """

    internal = True

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0, mode: str = "auto"):
        if monitor not in METRICS:
            raise ValueError(f"EarlyStopping: monitor must be one of {', '.join(METRICS)}; got {monitor!r}")
        check_int("EarlyStopping", "patience", patience, minimum=1)
        if isinstance(min_delta, bool) or not isinstance(min_delta, Real):
            raise TypeError(f"EarlyStopping: min_delta must be a number >= 0, got {min_delta!r}")
        if not (math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"EarlyStopping: min_delta must be a finite number >= 0, got {min_delta!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be auto, min or max, got {mode!r}")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.best = -math.inf if self.mode == "max" else math.inf
        self.best_epoch = 0
        self.bad_epochs = 0

    def update(self, record: dict[str, Any]) -> tuple[bool, bool]:
        """Feed one epoch record; returns (improved, should_stop)."""
        value = record.get(self.monitor)
        if value is None:
            raise ValueError(
                f"EarlyStopping: metric {self.monitor!r} is not recorded "
                "(monitor a val_ metric and give a validation split)"
            )
        better = value > self.best + self.min_delta if self.mode == "max" else value < self.best - self.min_delta
        if better:
            self.best, self.best_epoch, self.bad_epochs = value, record["epoch"], 0
        else:
            self.bad_epochs += 1
        return better, self.bad_epochs >= self.patience

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Update on the epoch's record; when patience runs out, tell the trainer to stop after this epoch."""
        _, stop = self.update(logs or {})
        if stop:
            self.trainer.stopped_early = True
            self.trainer.reporter.message(
                f"early stopping: {self.monitor} has not improved for {self.patience} epochs "
                f"(best {self.best:.4f} at epoch {self.best_epoch})"
            )

    def state_dict(self) -> dict[str, Any]:
        """Position, for checkpoints."""
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict()`."""
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]
