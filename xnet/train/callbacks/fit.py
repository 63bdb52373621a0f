"""How Trainer.fit assembles its callbacks: xnet's own around the user's, the schedule that learns from epochs,
the best-checkpoint keeper that lives across fits, and the end of training whatever ended it."""

from __future__ import annotations

from typing import Any

from xnet.train.callbacks.base import CallbackList
from xnet.train.callbacks.builtin import BestCheckpoint, Checkpoint, HistoryCSV, ProgressCallback, ScheduleStep


def learning_schedule(schedule: Any) -> Any:
    """The schedule that learns from each epoch's record (PlateauSchedule), also inside a warm-up; else None."""
    while schedule is not None and not hasattr(schedule, "epoch_end"):
        schedule = getattr(schedule, "inner", None)
    return schedule


def best_checkpoint(trainer: Any) -> BestCheckpoint | None:
    """The callback keeping trainer.best_path, following early stopping's rule when it is on.

    Kept on the trainer between fits (its best value is part of the state a resume continues from), and
    made anew when best_path or early stopping changed (both are attributes a user may set)."""
    if trainer.best_path is None:
        trainer._best = None
        return None
    es = trainer.early_stopping
    rule = (trainer.best_path, es.monitor, es.mode, es.min_delta) if es else (trainer.best_path, "auto", "auto", 0.0)
    kept = trainer._best
    if kept is None or (kept.path, kept.monitor, kept.mode, kept.min_delta) != rule:
        trainer._best = BestCheckpoint(*rule)
    return trainer._best


def fit_callbacks(trainer: Any, reporter: Any, callbacks: Any) -> CallbackList:
    """progress, schedule, early stopping, then the user's, then best.npz, the checkpoint and history.csv.

    The files come last so that they hold the state after every other callback's epoch end; a checkpoint
    is written before history.csv gains its row, so the file never runs ahead of what a resume starts from."""
    learning = learning_schedule(trainer.schedule)
    first = [ProgressCallback(reporter)] + ([ScheduleStep(learning)] if learning is not None else [])
    first += [trainer.early_stopping] if trainer.early_stopping is not None else []
    best = best_checkpoint(trainer)
    files = [best] if best is not None else []
    files += [Checkpoint(trainer.checkpoint_path)] if trainer.checkpoint_path else []
    files += [HistoryCSV(trainer.history_path)] if trainer.history_path else []
    user = CallbackList(callbacks).callbacks  # checked before anything starts
    return CallbackList(first + user + files, trainer)


def end_training(trainer: Any, cbs: CallbackList, failed: bool) -> None:
    """on_train_end for every callback; when training already failed, that error is the one reported."""
    t = trainer
    logs = {"epochs_completed": t.epoch, "interrupted": t.interrupted, "stopped_early": t.stopped_early}
    try:
        cbs.on_train_end(logs)
    except Exception:
        if not failed:
            raise
