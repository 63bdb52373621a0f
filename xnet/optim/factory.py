"""Optimizers and schedules by name: get_optimizer, get_schedule, and the learning rate both start from.

`resolve_lr(name, lr)` is the one place a run's learning rate is decided (the given one, else the
optimizer's default); get_optimizer uses it, and callers that build a schedule or show the rate
should take the same value from it rather than reading it back from the optimizer.
"""

from __future__ import annotations

import math
from typing import Any

from xnet.optim import lr_schedules as ls
from xnet.optim.adadelta import Adadelta
from xnet.optim.adagrad import Adagrad
from xnet.optim.adam import Adam, AdamW
from xnet.optim.adamax import Adamax
from xnet.optim.checks import check_count, check_name, check_options
from xnet.optim.groups import ParamsArg
from xnet.optim.lion import Lion
from xnet.optim.nadam import NAdam
from xnet.optim.optimizer import Optimizer
from xnet.optim.plateau import PlateauSchedule
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


def resolve_lr(name: str, lr: float | None = None) -> float:
    """The learning rate a run with optimizer `name` starts from: `lr`, or DEFAULT_LRS[name] when None."""
    return DEFAULT_LRS[check_name("optimizer", name, OPTIMIZERS)] if lr is None else lr


def get_optimizer(name: str, params: ParamsArg, lr: float | None = None, **kw: Any) -> Optimizer:
    """Build an optimizer by name (one of OPTIMIZERS); lr=None uses DEFAULT_LRS[name].

    "momentum" and "nesterov" are SGD with momentum 0.9 (override with momentum=...). Other
    keyword arguments go to the optimizer (weight_decay, betas, regularizers, clip_norm...).
    """
    key = check_name("optimizer", name, OPTIMIZERS)
    lr = resolve_lr(key, lr)
    cls = OPTIMIZER_CLASSES[key]
    check_options(f"get_optimizer({key!r})", kw, cls, ("params", "lr"), TypeError)
    if key in ("momentum", "nesterov"):
        kw.setdefault("momentum", NAMED_MOMENTUM)
        if key == "nesterov":
            kw["nesterov"] = True
    return cls(params, lr, **kw)


SCHEDULES = ("constant", "step", "exponential", "cosine", "cyclic", "onecycle", "plateau")

FINAL_FACTOR = 0.01  # default exponential decay: the last step runs at 1% of lr


def get_schedule(
    name: str, lr: float, total_steps: int, steps_per_epoch: int | None = None, **kw: Any
) -> ls.Schedule:
    """A schedule by name with defaults derived from the run's length; `kw` overrides them.

    constant:     lr throughout.
    step:         x0.1 at 1/3 and 2/3 of total_steps (kw: milestones or step_size, gamma).
    exponential:  per step (or per epoch with steps_per_epoch) with gamma chosen so the last
                  step runs at 1% of lr (kw: gamma).
    cosine:       cosine to 0 over total_steps, no warm-up (kw: warmup_steps, floor).
    warmup_steps (kw) on constant/step/exponential/cyclic wraps them in WarmupSchedule
    (a linear ramp factor over the first steps); onecycle refuses it (it warms up itself).
    cyclic:       triangular between 0.01 lr and lr, half-period 2 epochs when steps_per_epoch is
                  given, else total_steps // 8 (4 cycles) (kw: step_size, base_lr).
    onecycle:     PyTorch OneCycleLR defaults: pct_start 0.3, div_factor 25, final_div_factor
                  1e4 (kw: same names).
    plateau:      PyTorch ReduceLROnPlateau defaults: x0.1 after 10 epochs without improvement of
                  val_loss (kw: monitor, mode, factor, patience, threshold, threshold_mode, cooldown,
                  min_lr, eps); the trainer feeds it each epoch's record.
    """
    key = check_name("schedule", name, SCHEDULES)
    owner = f"get_schedule({key!r})"
    total_steps = check_count(owner, "total_steps", total_steps)
    if steps_per_epoch is not None:
        check_count(owner, "steps_per_epoch", steps_per_epoch)
    warmup = kw.pop("warmup_steps", 0) if key != "cosine" else 0
    if warmup:
        if key == "onecycle":
            raise ValueError(f"{owner}: onecycle warms up by itself (pct_start); "
                             f"got warmup_steps={warmup!r}")
        check_count(owner, "warmup_steps", warmup)
        if warmup >= total_steps:
            raise ValueError(f"{owner}: warmup_steps must be < total_steps={total_steps}, "
                             f"got {warmup!r}")
        return ls.WarmupSchedule(get_schedule(key, lr, total_steps, steps_per_epoch, **kw), warmup)
    if key == "constant":
        cls, args = ls.ConstantSchedule, {"lr": lr}
    elif key == "step":
        cls, args = ls.StepSchedule, {"lr": lr, "gamma": 0.1}
        if "step_size" not in kw and "milestones" not in kw:
            ms = ls.thirds_milestones(total_steps)
            if not ms:
                return ls.ConstantSchedule(lr)
            args["milestones"] = ms
    elif key == "exponential":
        n = total_steps if steps_per_epoch is None else math.ceil(total_steps / steps_per_epoch)
        gamma = FINAL_FACTOR ** (1.0 / (n - 1)) if n > 1 else 1.0
        cls, args = ls.ExponentialSchedule, {"lr": lr, "gamma": gamma, "steps_per_epoch": steps_per_epoch}
    elif key == "cosine":
        cls, args = ls.CosineSchedule, {"lr": lr, "total_steps": total_steps}
    elif key == "cyclic":
        half = 2 * steps_per_epoch if steps_per_epoch is not None else max(1, total_steps // 8)
        cls, args = ls.CyclicSchedule, {"lr": lr, "step_size": half}
    elif key == "plateau":
        cls, args = PlateauSchedule, {"lr": lr}
    else:
        cls, args = ls.OneCycleSchedule, {"lr": lr, "total_steps": total_steps}
    check_options(owner, kw, cls, ("lr", "total_steps"), ValueError)
    args.update(kw)
    return cls(**args)
