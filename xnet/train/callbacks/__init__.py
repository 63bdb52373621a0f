"""Callbacks for Trainer.fit: the protocol (base.py) and xnet's own (builtin.py)."""

from xnet.train.callbacks.base import HOOKS, Callback, CallbackError, CallbackList, LambdaCallback, as_callbacks
from xnet.train.callbacks.builtin import (
    BestCheckpoint,
    Checkpoint,
    HistoryCSV,
    ProgressCallback,
    ScheduleStep,
    default_monitor,
)

__all__ = [
    "HOOKS",
    "BestCheckpoint",
    "Callback",
    "CallbackError",
    "CallbackList",
    "Checkpoint",
    "HistoryCSV",
    "LambdaCallback",
    "ProgressCallback",
    "ScheduleStep",
    "as_callbacks",
    "default_monitor",
]
