"""The Trainer's argument checks: its parts, and the data handed to fit and evaluate."""

from __future__ import annotations

from typing import Any

from xnet.data.loader import DataLoader
from xnet.losses import Loss
from xnet.nn.module import Module
from xnet.optim.optimizer import Optimizer
from xnet.train.early_stopping import EarlyStopping


def check_parts(model: Any, loss: Any, optimizer: Any, schedule: Any, early_stopping: Any) -> None:
    """TypeError/ValueError for a Trainer built from the wrong parts, before anything is moved."""
    if not isinstance(model, Module):
        raise TypeError(f"Trainer: model must be an xnet Module (e.g. a Sequential), got {type(model).__name__}")
    if not isinstance(loss, Loss):
        hint = f"; for a loss by name use get_loss({loss!r})" if isinstance(loss, str) else ""
        raise TypeError(f"Trainer: loss must be an xnet Loss (e.g. CrossEntropy()), got {loss!r:.60}{hint}")
    check_reduction(loss, "Trainer")
    if optimizer is not None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"Trainer: optimizer must be an xnet Optimizer (e.g. Adam(model.parameters())) or None, "
                f"got {optimizer!r:.60}"
            )
        own = {id(p) for p in model.parameters()}
        foreign = [p for p in optimizer.parameters() if id(p) not in own]
        if foreign:
            raise ValueError(
                f"Trainer: the optimizer updates {len(foreign)} parameter(s) that are not the model's "
                f"(first: {foreign[0]!r}), so training would not change the model; build it from this "
                f"model: {type(optimizer).__name__}(model.parameters(), ...)"
            )
    if schedule is not None and not callable(getattr(schedule, "lr_at", None)):
        raise TypeError(
            f"Trainer: schedule must be a Schedule with lr_at(step) (e.g. get_schedule('cosine', ...)) or None, "
            f"got {schedule!r:.60}"
        )
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(f"Trainer: early_stopping must be an EarlyStopping or None, got {early_stopping!r:.60}")


def check_reduction(loss: Loss, owner: str) -> None:
    """ValueError for a loss with reduction="none": training and the reported losses need one number per batch."""
    if loss.reduction == "none":
        raise ValueError(
            f"{owner}: the loss {type(loss).__name__} has reduction='none' (one loss per term), and training needs "
            "one number per batch; use reduction='mean' (the default) or 'sum'"
        )


def data_pair(data: Any, what: str) -> tuple[Any, Any]:
    """(x, y) of a Split-like object (x: its `inputs`, uint8 Pixels stay so) or an (x, y) pair; TypeError
    saying what is accepted otherwise."""
    if hasattr(data, "inputs") and hasattr(data, "y"):  # a Split: `inputs` does not build its float32 x
        return data.inputs, data.y
    if hasattr(data, "x") and hasattr(data, "y"):
        return data.x, data.y
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    if hasattr(data, "train") and hasattr(data, "splits"):
        got = "a Dataset; pass one of its splits, e.g. ds.train"
    elif hasattr(data, "shape"):
        got = f"an array of shape {tuple(data.shape)}; pass inputs and targets together as (x, y)"
    elif isinstance(data, (tuple, list)):
        got = f"a {type(data).__name__} of {len(data)} items"
    else:
        got = f"{type(data).__name__} {data!r:.40}"
    raise TypeError(f"{what} must be an (x, y) pair of arrays, a Split or a DataLoader; got {got}")


def check_usable(loader: DataLoader, what: str, targets: bool = True) -> None:
    """ValueError for data without samples, or (with `targets`) without targets to train or evaluate on."""
    if loader.n == 0:
        raise ValueError(f"{what} holds no samples (x has shape {tuple(loader.x.shape)})")
    if targets and loader.y is None:
        raise ValueError(f"{what} has no targets (y is None); training and evaluation need them")
