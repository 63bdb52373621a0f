"""What fit does before its first step: the loaders it trains and evaluates on, and the checks that fail a
run early (the model fits the data, batch norm has batches of 2 or more, early stopping's metric is recorded)."""

from __future__ import annotations

import copy
import math
from typing import Any

from xnet.backends import Array, Backend
from xnet.data.loader import DataLoader
from xnet.errors import DataError
from xnet.losses import Loss
from xnet.nn.batchnorm import BatchNorm1D
from xnet.nn.module import Module
from xnet.train.early_stopping import METRICS
from xnet.train.trainer_checks import check_usable, data_pair


def make_loader(
    data: Any, batch_size: int | str | None, backend: Backend, seed: int, dtype: str, *,
    shuffle: bool, drop_last: bool | str = False, what: str = "data",
) -> DataLoader:  # fmt: skip
    """A DataLoader for `data` (a DataLoader, returned as is, a Split, or an (x, y) pair of host arrays)."""
    if isinstance(data, DataLoader):
        return data
    x, y = data_pair(data, what)
    return DataLoader(x, y, batch_size, backend, shuffle=shuffle, seed=seed, drop_last=drop_last, dtype=dtype)


def training_loader(data: Any, batch_size: int | str | None, backend: Backend, seed: int, dtype: str) -> DataLoader:
    """The training pass's loader: shuffled, and skipping a last batch of exactly one sample.

    Batch norm cannot train on one sample (its batch variance is undefined), so a training set
    of 57 in batches of 7 would fail at the end of the first epoch. The order is reshuffled every
    epoch, so the sample left out differs from epoch to epoch and every sample is still trained on
    (a DataLoader given with shuffle=False leaves out the same last sample every epoch).
    """
    what = "Trainer.fit: train"
    loader = make_loader(data, batch_size, backend, seed, dtype, shuffle=True, drop_last="single", what=what)
    check_usable(loader, what)
    if loader.drop_last is False:  # a DataLoader given as is: a copy, so the caller's keeps its setting
        loader = copy.copy(loader)
        loader.drop_last = "single"
    return loader


def is_classification(loss: Loss, loader: DataLoader) -> bool:
    """True when `loss` on these targets is a classification (so accuracy is recorded)."""
    return loader.y is not None and loss.classifies(loader.y)


def forward_one(model: Module, loader: DataLoader) -> Array:
    """The model's output for the first sample, in evaluation mode (no dropout draw, no batch-norm update)."""
    with model.evaluating():
        try:
            return model.forward(loader.inputs(0, 1))
        except ValueError as e:
            shape = tuple(loader.x.shape[1:])
            raise ValueError(f"the model does not fit the data (samples of shape {shape}): {e}") from None


def check_outputs(out: Array, loss: Loss, loader: DataLoader, num_classes: int | None) -> int:
    """ValueError unless the model's output `out` (1, ...) suits the targets; returns its values per sample."""
    width = int(math.prod(out.shape[1:]))
    if not is_classification(loss, loader):
        if loader.y is None:
            return width
        wanted = math.prod(loader.y.shape[1:])
        if width != wanted:
            raise ValueError(
                f"the model outputs {width} values per sample but the targets have {wanted}; "
                f"its last layer needs {wanted} outputs"
            )
        return width
    if len(out.shape) != 2:
        raise ValueError(
            f"the model outputs shape {tuple(out.shape[1:])} per sample; a classifier must output one score "
            "per class (end with a flatten and a dense layer)"
        )
    if num_classes is not None and int(out.shape[1]) != num_classes:
        raise ValueError(
            f"the model outputs {int(out.shape[1])} values but the dataset has {num_classes} classes; "
            f"its last layer needs {num_classes} outputs"
        )
    return width


def check_batch_norm_batches(model: Module, loader: DataLoader) -> None:
    """A model with BatchNorm1D cannot train on batches of one sample: say why before training starts.

    A last batch of one is skipped (see `training_loader`); a batch size of 1 or a one-sample training
    set leaves only such batches. (BatchNorm2D averages over the pixels too, so one image is enough.)
    """
    if min(loader.batch_size, loader.n) != 1:
        return
    if not any(isinstance(m, BatchNorm1D) for m in model.modules()):
        return
    why = "the training data holds 1 sample" if loader.n == 1 else "the batch size is 1"
    raise ValueError(
        f"batch norm (BatchNorm1D) needs at least 2 samples per training batch (it normalises each "
        f"feature over the batch), but {why}"
    )


def check_monitor(owner: str, monitor: str, loss: Loss, loader: DataLoader, val: Any, test: Any) -> None:
    """A watched metric (early stopping's, a plateau schedule's) must be one that this fit records: its split
    given, accuracy for a classifier. `owner` names the watcher in the message."""
    if monitor not in METRICS:
        raise ValueError(f"{owner}: monitor must be one of {', '.join(METRICS)}; got {monitor!r}")
    if val is None and monitor.startswith("val_"):
        raise ValueError(f"{owner}: monitors {monitor!r}, but fit() was given no validation data (val=)")
    if test is None and monitor.startswith("test_"):
        raise ValueError(f"{owner}: monitors {monitor!r}, but fit() was given no test data (test=)")
    if monitor.endswith("_accuracy") and not is_classification(loss, loader):
        raise ValueError(
            f"{owner}: monitors {monitor!r}, but {type(loss).__name__} on these targets is no "
            "classification, so no accuracy is recorded; monitor a loss"
        )


def check_finite_data(backend: Backend, loader: DataLoader, loss: float, epoch: int, step: int) -> None:
    """A NaN/inf in the data also makes the loss non-finite: say so, not "lower the learning rate".

    Only runs once training has gone non-finite, so it costs nothing per step.
    """
    xp, item = backend.xp, backend.item
    # uint8 pixels (a loader of Pixels stores them) are always finite: only float arrays are searched
    arrays = [("inputs", loader.x)] + ([("targets", loader.y)] if loader.y is not None else [])
    for what, a in arrays:
        if "float" in str(a.dtype) and not item(xp.all(xp.isfinite(a))):
            raise DataError(
                f"the training {what} contain NaN or infinite values (the loss became {loss} at epoch {epoch}, "
                f"step {step}); fix or drop those samples"
            )
