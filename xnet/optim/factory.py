"""get_optimizer: an optimizer by name with a default learning rate that trains an MNIST MLP."""

from __future__ import annotations

import inspect
from typing import Any

from xnet.optim.adadelta import Adadelta
from xnet.optim.adagrad import Adagrad
from xnet.optim.adam import Adam, AdamW
from xnet.optim.adamax import Adamax
from xnet.optim.checks import check_name
from xnet.optim.lion import Lion
from xnet.optim.nadam import NAdam
from xnet.optim.optimizer import Optimizer, ParamsArg
from xnet.optim.radam import RAdam
from xnet.optim.rmsprop import RMSprop
from xnet.optim.sgd import SGD

OPTIMIZERS = (
    "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw",
    "adadelta", "adamax", "nadam", "radam", "lion",
)  # fmt: skip
OPTIMIZER_CLASSES: dict[str, type[Optimizer]] = {
    "sgd": SGD, "momentum": SGD, "nesterov": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW,
    "adadelta": Adadelta, "adamax": Adamax, "nadam": NAdam, "radam": RAdam, "lion": Lion,
}  # fmt: skip
NAMED_MOMENTUM = 0.9  # the momentum of the optimizers named "momentum" and "nesterov"

# Default learning rates for a mean-reduced loss at batch 16..128 (checked on an MNIST MLP
# 784-256-128-10, one epoch: 94-97% test accuracy for every entry at batch 16 and 64). SGD with
# momentum 0.9 takes steps ~1/(1 - 0.9) = 10x larger than plain SGD; 0.02 (an effective 0.2)
# was the best compromise: 0.05 is noisy at batch 16, 0.01 slow at batch 64.
DEFAULT_LRS = {
    "sgd": 0.1,
    "momentum": 0.02,
    "nesterov": 0.02,
    "adagrad": 0.01,
    "rmsprop": 0.001,
    "adam": 0.001,
    "adamw": 0.001,
    # PyTorch's defaults (Lion: the paper's, 3-10x below AdamW's as its sign steps are larger); one
    # epoch of the MLP at batch 64 (cosine schedule): adadelta 96.9%, adamax 95.4%, nadam 97.1%,
    # radam 94.2%, lion 94.4% test accuracy
    "adadelta": 1.0,
    "adamax": 0.002,
    "nadam": 0.002,
    "radam": 0.001,
    "lion": 0.0001,
}


def get_optimizer(name: str, params: ParamsArg, lr: float | None = None, **kw: Any) -> Optimizer:
    """Build an optimizer by name (one of OPTIMIZERS); lr=None uses DEFAULT_LRS[name].

    "momentum" and "nesterov" are SGD with momentum 0.9 (override with momentum=...). Other
    keyword arguments go to the optimizer (weight_decay, betas, regularizers, clip_norm...).
    """
    key = check_name("optimizer", name, OPTIMIZERS)
    lr = DEFAULT_LRS[key] if lr is None else lr
    cls = OPTIMIZER_CLASSES[key]
    valid = [p for p in inspect.signature(cls).parameters if p not in ("params", "lr")]
    unknown = [k for k in kw if k not in valid]
    if unknown:
        raise TypeError(f"get_optimizer({key!r}): unknown option(s) {unknown}; {cls.__name__} accepts: "
                        f"{', '.join(valid)}")
    if key in ("momentum", "nesterov"):
        kw.setdefault("momentum", NAMED_MOMENTUM)
        if key == "nesterov":
            kw["nesterov"] = True
    return cls(params, lr, **kw)
