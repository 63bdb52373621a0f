"""Model, loss, optimizer and schedule from a RunConfig: where xnet train's options meet the Python API.

The CLI and TOML name an option as the Python API does (`beta1` is Adam's `beta1`); where the
name or unit differs, it is converted here: `loss_reduction` is every loss's `reduction`,
`bn_eps`/`bn_momentum` are BatchNorm's `eps`/`momentum`, and the schedule's durations
(`warmup_epochs`, `step_size`, `milestones`) count epochs, which become optimizer steps.
"""

from __future__ import annotations

import math
from typing import Any

from xnet.config import RunConfig
from xnet.errors import ConfigError
from xnet.nn.module import Module

# RunConfig fields that go to the optimizer under the same name, when set
_OPTIMIZER_KEYS = ("momentum", "beta1", "beta2", "eps", "rho", "initial_accumulator_value", "weight_decay",
                   "clip_norm", "clip_value", "momentum_decay")  # fmt: skip
_SCHEDULE_KEYS = ("gamma", "floor", "base_lr", "pct_start", "div_factor", "final_div_factor")


def count(n: int, noun: str) -> str:
    """'1 step', '3 steps'."""
    return f"{n} {noun}{'s' * (n != 1)}"


def _set(cfg: RunConfig, keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: getattr(cfg, k) for k in keys if getattr(cfg, k) is not None}


def build_model(cfg: RunConfig, input_shape: tuple[int, ...], outputs: int) -> Module:
    """The network a config describes (a preset or its [[model.layers]]), on the current build."""
    from xnet.models import build_preset
    from xnet.nn.registry import model_from_config

    if cfg.layers:  # sizes left out of the tables (in_features, in_channels) come from the data
        model = model_from_config({"layers": cfg.layers}, "model")
        try:
            return model.build(input_shape)
        except ValueError as e:  # worded as the Trainer's own check of the first batch
            raise ValueError(f"the model does not fit the data (samples of shape {tuple(input_shape)}): {e}") from None
    activation_args = {"alpha": cfg.alpha} if cfg.alpha is not None else {}
    bn_args = {k: v for k, v in (("eps", cfg.bn_eps), ("momentum", cfg.bn_momentum)) if v is not None}
    return build_preset(
        cfg.model, input_shape, outputs, cfg.hidden, cfg.activation, cfg.init, cfg.dropout, cfg.batch_norm,
        activation_args, bn_args, cfg.bias_init,
    )  # fmt: skip


def parameter_line(model: Module) -> str:
    """'model: 1,234,567 parameters (1,234,567 trainable)', the line a run starts with."""
    n = model.num_parameters()
    extra = sum(math.prod(b.shape) for _, b in model.named_buffers())
    stats = f", plus {extra:,} running statistics" if extra else ""
    return f"model: {n:,} parameters ({n:,} trainable{stats}); `xnet summary` lists them by layer"


def build_loss(cfg: RunConfig, task: str) -> Module:
    """Cross-entropy, or MSE: on softmax outputs for classification, on raw outputs for regression."""
    from xnet.losses import get_loss

    name = cfg.loss
    if task == "regression" and name != "mse":
        raise ConfigError(f"loss {name!r} needs class labels, but {cfg.dataset!r} is a regression task: use --loss mse")
    if name == "mse" and task == "classification":
        name = "softmax-mse"
    kwargs: dict[str, Any] = {"reduction": cfg.loss_reduction}
    if cfg.label_smoothing:
        kwargs["label_smoothing"] = cfg.label_smoothing
    return get_loss(name, **kwargs)


def build_optimizer(cfg: RunConfig, model: Module, lr: float | None = None) -> Any:
    """The optimizer with L1/L2 regularisers, clipping, weight decay and its own hyper-parameters.

    `lr` is the run's rate as `resolve_lr` gave it (None: resolve it from cfg here)."""
    from xnet.optim import L1, L2, get_optimizer, resolve_lr

    every = cfg.include_all
    regularizers = ([L1(cfg.l1, every)] if cfg.l1 else []) + ([L2(cfg.l2, every)] if cfg.l2 else [])
    kwargs: dict[str, Any] = {"regularizers": regularizers, **_set(cfg, _OPTIMIZER_KEYS)}
    if cfg.optimizer in ("adam", "adamw"):
        kwargs["bias_correction"] = cfg.bias_correction
    if cfg.optimizer in ("nadam", "radam"):
        kwargs["decoupled_weight_decay"] = cfg.decoupled_weight_decay
    # decay_all is a param group's setting: one group holding every parameter
    params = [{"params": model.parameters(), "decay_all": True}] if cfg.decay_all else model.parameters()
    lr = resolve_lr(cfg.optimizer, cfg.lr) if lr is None else lr
    return get_optimizer(cfg.optimizer, params, lr=lr, **kwargs)


def _steps(key: str, epochs: float, steps_per_epoch: int) -> int:
    """A duration in epochs as optimizer steps (at least one)."""
    steps = int(round(epochs * steps_per_epoch))
    if steps < 1:
        raise ConfigError(
            f"{key}: {epochs:g} epochs is less than one step ({steps_per_epoch} steps per epoch); give at least "
            f"{1 / steps_per_epoch:.3g}"
        )
    return steps


def build_schedule(cfg: RunConfig, lr: float, steps_per_epoch: int) -> Any:
    """The lr schedule over the run's total number of optimizer steps (durations given in epochs)."""
    from xnet.optim import get_schedule

    total = cfg.epochs * steps_per_epoch
    kwargs: dict[str, Any] = _set(cfg, _SCHEDULE_KEYS)
    if cfg.warmup_epochs:
        warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
        if warmup >= total:
            raise ConfigError(
                f"warmup_epochs: a warmup of {count(warmup, 'step')} ({cfg.warmup_epochs:g} epochs) is not shorter "
                f"than the run's {count(total, 'step')} ({count(cfg.epochs, 'epoch')} of {steps_per_epoch}); "
                "lower warmup_epochs or raise epochs"
            )
        kwargs["warmup_steps"] = warmup
    if cfg.step_size is not None:
        kwargs["step_size"] = _steps("step_size", cfg.step_size, steps_per_epoch)
    if cfg.schedule == "plateau":
        kwargs.pop("gamma", None)
        plateau = {"factor": cfg.gamma, "monitor": cfg.monitor, "threshold_mode": cfg.threshold_mode}
        plateau.update(_set(cfg, ("patience", "threshold", "cooldown", "min_lr")))
        kwargs.update({k: v for k, v in plateau.items() if v is not None})
    if cfg.milestones is not None:
        steps = [_steps("milestones", m, steps_per_epoch) for m in cfg.milestones]
        if steps != sorted(set(steps)):
            raise ConfigError(
                f"milestones: {cfg.milestones} epochs fall on steps {steps} ({steps_per_epoch} steps per epoch): "
                "two share a step; space them further apart"
            )
        kwargs["milestones"] = steps
    return get_schedule(cfg.schedule, lr, total, steps_per_epoch=steps_per_epoch, **kwargs)
