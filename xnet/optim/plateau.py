"""Reduce-on-plateau: the learning rate drops by `factor` when a monitored metric stops improving.

Unlike the other schedules this one is not a pure function of the step: it is fed one value of its
metric at the end of every epoch (`update`) and keeps its position (best value, bad epochs, cooldown,
current lr), which `state_dict` carries into checkpoints so a resumed run continues exactly.
The rules are PyTorch's ReduceLROnPlateau, term for term.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from xnet.optim.checks import check_nonneg, check_positive
from xnet.optim.lr_schedules import Schedule

# the metrics an epoch record holds (xnet/train/early_stopping.py METRICS): what can be monitored
MONITORS = ("val_loss", "val_accuracy", "train_loss", "train_accuracy", "test_loss", "test_accuracy")


class PlateauSchedule(Schedule):
    """lr, times `factor` each time `monitor` has not improved for more than `patience` epochs.

    As PyTorch's ReduceLROnPlateau: a value improves on the best so far when, in mode "min",
    value < best * (1 - threshold) ("rel") or value < best - threshold ("abs"); in mode "max",
    value > best * (1 + threshold) or value > best + threshold. After `patience` + 1 epochs
    without improvement the lr becomes max(lr * factor, min_lr) (a change under `eps` is skipped),
    and the next `cooldown` epochs count no bad epochs. mode "auto" maximises accuracies and
    minimises losses.
    """

    name = "plateau"

    def __init__(
        self,
        lr: float,
        monitor: str = "val_loss",
        mode: str = "auto",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ):
        owner = "PlateauSchedule"
        self.lr = check_nonneg(owner, "lr", lr)
        if monitor not in MONITORS:
            raise ValueError(f"{owner}: monitor must be one of {', '.join(MONITORS)}; got {monitor!r}")
        self.monitor = monitor
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{owner}: mode must be auto, min or max, got {mode!r}")
        self.mode = ("max" if monitor.endswith("accuracy") else "min") if mode == "auto" else mode
        self.factor = check_positive(owner, "factor", factor)
        if self.factor >= 1:
            raise ValueError(f"{owner}: factor must be < 1 (the lr is multiplied by it), got {factor!r}")
        self.patience = _check_epochs(owner, "patience", patience)
        self.threshold = check_nonneg(owner, "threshold", threshold)
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{owner}: threshold_mode must be rel or abs, got {threshold_mode!r}")
        self.threshold_mode = threshold_mode
        self.cooldown = _check_epochs(owner, "cooldown", cooldown)
        self.min_lr = check_nonneg(owner, "min_lr", min_lr)
        self.eps = check_nonneg(owner, "eps", eps)
        self._current = self.lr
        self._best = math.inf if self.mode == "min" else -math.inf
        self._bad_epochs = 0
        self._cooldown_left = 0
        self._epochs = 0

    def lr_at(self, step: int) -> float:
        """The current lr, whatever the step: it changes only in `update`."""
        return self._current

    def improves(self, value: float) -> bool:
        """Whether `value` is better than the best so far by more than the threshold."""
        best, t = self._best, self.threshold
        if self.mode == "min":
            return value < (best * (1.0 - t) if self.threshold_mode == "rel" else best - t)
        return value > (best * (1.0 + t) if self.threshold_mode == "rel" else best + t)

    def update(self, value: float) -> bool:
        """Feed the monitored metric of one finished epoch; True when this lowered the lr."""
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(f"PlateauSchedule: the monitored {self.monitor} must be a number, got {value!r}")
        value = float(value)
        self._epochs += 1
        if self.improves(value):  # NaN never improves: it counts as a bad epoch, as in PyTorch
            self._best, self._bad_epochs = value, 0
        else:
            self._bad_epochs += 1
        if self._cooldown_left > 0:
            self._cooldown_left -= 1
            self._bad_epochs = 0  # epochs in cooldown are not held against the new lr
        if self._bad_epochs > self.patience:
            self._bad_epochs = 0
            self._cooldown_left = self.cooldown
            new = max(self._current * self.factor, self.min_lr)
            if self._current - new > self.eps:
                self._current = new
                return True
        return False

    def epoch_end(self, record: dict[str, Any]) -> bool:
        """`update` with the monitored metric of an epoch record; a record without it is a ValueError."""
        value = record.get(self.monitor)
        if value is None:
            raise ValueError(
                f"PlateauSchedule: monitors {self.monitor!r}, which this training does not record "
                "(a val_ metric needs a validation split, an accuracy a classification loss)"
            )
        return self.update(value)

    def state_dict(self) -> dict[str, Any]:
        """The position (current lr, best value, bad epochs, cooldown left, epochs seen), for checkpoints."""
        return {
            "lr": self._current,
            "best": self._best,
            "bad_epochs": self._bad_epochs,
            "cooldown_left": self._cooldown_left,
            "epochs": self._epochs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict()`; a missing key is a ValueError naming it."""
        missing = [k for k in ("lr", "best", "bad_epochs", "cooldown_left", "epochs") if k not in state]
        if missing:
            raise ValueError(f"PlateauSchedule.load_state_dict: the state lacks {', '.join(missing)}")
        self._current = check_nonneg("PlateauSchedule.load_state_dict", "lr", state["lr"])
        self._best = float(state["best"])
        self._bad_epochs = int(state["bad_epochs"])
        self._cooldown_left = int(state["cooldown_left"])
        self._epochs = int(state["epochs"])


def _check_epochs(owner: str, name: str, value: object) -> int:
    """An int >= 0 (a number of epochs)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{owner}: {name} must be an int >= 0 (epochs), got {value!r}")
    return value
