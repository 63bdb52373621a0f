"""Losses: cross-entropy fused with softmax, MSE, MSE on softmax outputs, binary cross-entropy.

A loss is a Module (it gets its backend from `build_on` and moves with `.to()`):
`forward(outputs, target)` returns the loss and caches what `backward()` needs; `backward()`
returns d loss / d outputs, the same shape as `outputs`.

`reduction` says how the terms combine, as in PyTorch and Keras: "mean" (the default) averages
them, "sum" adds them, "none" returns them unreduced, (N,) for cross-entropy and shaped like the
outputs for the elementwise losses (MSE, softmax-MSE, BCE); "mean" and "sum" are the mean and sum
of that array. After a "none" forward, `backward(grad)` takes d(something)/d(each term), shaped
like the terms. A sum over a batch of N samples is N times the mean for cross-entropy (N * K for
the elementwise losses on K outputs), and so is its gradient.

Targets are integer class labels (N,) or float arrays shaped like the outputs (one-hot or soft).
`classifies(target)` tells a trainer whether accuracy means anything for these targets, and
`predict(outputs)` turns outputs into integer class labels for that accuracy.
"""

from __future__ import annotations

import inspect
from typing import Any

from xnet.losses.base import REDUCTIONS, Loss, check_reduction
from xnet.losses.bce import BinaryCrossEntropy
from xnet.losses.cross_entropy import CrossEntropy
from xnet.losses.mse import MSE, SoftmaxMSE

_LOSSES: dict[str, type[Loss]] = {
    "cross-entropy": CrossEntropy,
    "mse": MSE,
    "softmax-mse": SoftmaxMSE,
    "bce": BinaryCrossEntropy,
}
LOSSES: tuple[str, ...] = tuple(_LOSSES)
_ALIASES = {
    "cross_entropy": "cross-entropy",
    "crossentropy": "cross-entropy",
    "ce": "cross-entropy",
    "softmax_mse": "softmax-mse",
    "binary-cross-entropy": "bce",
    "binary_cross_entropy": "bce",
}


def get_loss(name: str, **kwargs: Any) -> Loss:
    """A new loss by name ('cross-entropy', 'ce', 'mse', 'softmax-mse', 'bce'); kwargs to it."""
    key = name.strip().lower() if isinstance(name, str) else None
    key = _ALIASES.get(key, key) if key is not None else None
    if key not in _LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(LOSSES)}")
    cls = _LOSSES[key]
    valid = list(inspect.signature(cls).parameters)
    unknown = [k for k in kwargs if k not in valid]
    if unknown:
        takes = f"accepts: {', '.join(valid)}" if valid else "takes no options"
        raise TypeError(f"get_loss({key!r}): unknown option(s) {unknown}; {cls.__name__} {takes}")
    return cls(**kwargs)


__all__ = [
    "LOSSES",
    "REDUCTIONS",
    "MSE",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "Loss",
    "SoftmaxMSE",
    "check_reduction",
    "get_loss",
]
