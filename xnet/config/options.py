"""Which run options each optimizer, loss, schedule and model reads, their defaults, and `xnet options`.

An option set for a choice that would not read it (`--beta1` with sgd, `--label-smoothing` with
mse) is refused with one line naming what does read it, so no setting is silently ignored. The
same tables give the listing of `xnet options` and the defaults a run's config.toml records.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from xnet.config.values import toml_value
from xnet.errors import ConfigError

# a RunConfig (xnet/config/schema.py): the schema's validation reads these tables, so this module
# imports nothing of it, not even for annotations
RunConfig = Any


@functools.cache
def _defaults(kind: type) -> Any:
    """A configuration of class `kind` with every field at its default (RunConfig() is DEFAULTS)."""
    return kind()

# the options only some choices read (an option every choice of a kind reads is in EVERY)
OPTIMIZER_OPTIONS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum",),
    "momentum": ("momentum",),
    "nesterov": ("momentum",),
    "adagrad": ("eps", "initial_accumulator_value"),
    "rmsprop": ("rho", "eps"),
    "adam": ("beta1", "beta2", "eps", "bias_correction"),
    "adamw": ("beta1", "beta2", "eps", "bias_correction"),
    "adadelta": ("rho", "eps"),
    "adamax": ("beta1", "beta2", "eps"),
    "nadam": ("beta1", "beta2", "eps", "momentum_decay", "decoupled_weight_decay"),
    "radam": ("beta1", "beta2", "eps", "decoupled_weight_decay"),
    "lion": ("beta1", "beta2"),
}
LOSS_OPTIONS: dict[str, tuple[str, ...]] = {"cross-entropy": ("label_smoothing",), "mse": (), "softmax-mse": ()}
SCHEDULE_OPTIONS: dict[str, tuple[str, ...]] = {
    "constant": ("warmup_epochs",),
    "step": ("warmup_epochs", "gamma", "step_size", "milestones"),
    "exponential": ("warmup_epochs", "gamma"),
    "cosine": ("warmup_epochs", "floor"),
    "cyclic": ("warmup_epochs", "step_size", "base_lr"),
    "onecycle": ("pct_start", "div_factor", "final_div_factor"),
    "plateau": ("warmup_epochs", "gamma", "monitor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr"),
}
KINDS = {"optimizer": OPTIMIZER_OPTIONS, "loss": LOSS_OPTIONS, "schedule": SCHEDULE_OPTIONS}
EVERY = {
    "optimizer": ("lr", "weight_decay", "decay_all", "l1", "l2", "include_all", "clip_norm", "clip_value"),
    "loss": ("loss_reduction",),
    "schedule": (),
}
# which of the model options each model reads (custom layers set everything per layer)
MODEL_OPTIONS: dict[str, tuple[str, ...]] = {
    "mlp": ("hidden", "activation", "alpha", "init", "bias_init", "dropout", "batch_norm", "bn_momentum", "bn_eps"),
    "cnn": ("activation", "alpha", "init", "bias_init", "dropout", "batch_norm", "bn_momentum", "bn_eps"),
    "lenet5": ("activation", "alpha", "init", "bias_init"),
    "small-cnn": ("init", "bias_init"),
    "bn-cnn": ("init", "bias_init", "bn_momentum", "bn_eps"),
    "custom": (),
}
# the activations that read --alpha: LeakyReLU's slope, ELU's scale of the negative side
ALPHA_ACTIVATIONS = ("leaky_relu", "elu")
_MODEL_KEYS = ("hidden", "activation", "alpha", "init", "bias_init", "dropout", "batch_norm", "bn_momentum", "bn_eps")
# where xnet train's name or unit differs from the Python API's
PYTHON_NAMES = {
    "loss_reduction": "reduction= on every loss",
    "alpha": "LeakyReLU(alpha=) or ELU(alpha=)",
    "bn_momentum": "BatchNorm1D/BatchNorm2D(momentum=)",
    "bn_eps": "BatchNorm1D/BatchNorm2D(eps=)",
    "l1": "regularizers=[L1(...)] on the optimizer",
    "l2": "regularizers=[L2(...)] on the optimizer",
    "include_all": "L1/L2(include_all=)",
    "decay_all": 'a param group\'s "decay_all": optimizer([{"params": ..., "decay_all": True}])',
    "warmup_epochs": "warmup_steps= of get_schedule, in steps",
    "step_size": "step_size= of StepSchedule/CyclicSchedule, in steps",
    "milestones": "milestones= of StepSchedule, in steps",
    "gamma": "gamma= of StepSchedule/ExponentialSchedule, factor= of PlateauSchedule",
}


def given(cfg: RunConfig, key: str) -> bool:
    """Whether `key` differs from its default: only a value the user set (flag, file, checkpoint) can."""
    return getattr(cfg, key) != getattr(_defaults(type(cfg)), key)


def _flag(cfg: RunConfig, key: str) -> str:
    value = getattr(cfg, key)
    dashed = key.replace("_", "-")
    return f"--no-{dashed}" if value is False else f"--{dashed}"


def _refuse(cfg: RunConfig, keys: list[str], why: str) -> None:
    listed = ", ".join(f"{k} = {toml_value(getattr(cfg, k))}" for k in keys)
    raise ConfigError(f"{listed}: no effect {why}; drop {', '.join(_flag(cfg, k) for k in keys)}")


def check_applicable(cfg: RunConfig) -> None:
    """ConfigError for an option set to something that the rest of the configuration would ignore."""
    _check_model_options(cfg)
    if cfg.warmup_epochs and cfg.schedule == "onecycle":
        raise ConfigError(
            "warmup_epochs: the onecycle schedule warms up by itself (over its first pct_start of the run, 30% "
            "by default); drop warmup_epochs"
        )
    for kind, table in KINDS.items():
        choice = getattr(cfg, kind)
        every_choice = {k for keys in table.values() for k in keys}
        unused = [k for k in sorted(every_choice) if given(cfg, k) and k not in table[choice]]
        if unused:
            users = "; ".join(
                f"{'only ' if len(unused) == 1 else ''}{', '.join(c for c, keys in table.items() if k in keys)} use {k}"
                for k in unused
            )
            _refuse(cfg, unused, f"with {kind} {choice!r} ({users})")
    if cfg.decay_all and (cfg.weight_decay == 0 or (cfg.weight_decay is None and cfg.optimizer != "adamw")):
        _refuse(cfg, ["decay_all"], "without weight decay (--weight-decay, or adamw's default 0.01)")
    if cfg.decoupled_weight_decay and not cfg.weight_decay:
        _refuse(cfg, ["decoupled_weight_decay"], "without weight decay (--weight-decay)")
    if cfg.include_all and not (cfg.l1 or cfg.l2):
        _refuse(cfg, ["include_all"], "without an L1 or L2 penalty (--l1, --l2)")
    if cfg.step_size is not None and cfg.milestones is not None:
        raise ConfigError(
            "step_size and milestones both set: the step schedule decays every step_size epochs or at the "
            "milestones; drop one"
        )
    _check_data_options(cfg)


def _check_model_options(cfg: RunConfig) -> None:
    uses = MODEL_OPTIONS.get(cfg.model, ())
    unused = [k for k in _MODEL_KEYS if given(cfg, k) and k not in uses]
    if unused:
        why = (
            "on a model given as [[model.layers]] (each layer sets its own)"
            if cfg.model == "custom"
            else f"on the {cfg.model} preset (it reads only {', '.join(uses)})"
        )
        _refuse(cfg, unused, why)
    if given(cfg, "alpha") and cfg.activation not in ALPHA_ACTIVATIONS:
        _refuse(cfg, ["alpha"], f"with activation {cfg.activation!r} (only leaky_relu and elu have an alpha)")
    bn_unused = [k for k in ("bn_momentum", "bn_eps") if given(cfg, k)]
    if bn_unused and cfg.model != "bn-cnn" and not cfg.batch_norm:
        _refuse(cfg, bn_unused, "without batch norm (--batch-norm, or the bn-cnn preset)")


def _check_data_options(cfg: RunConfig) -> None:
    """The pixel modes (unit, centered) leave regression data (sine, the one such dataset) unscaled."""
    from xnet.data.prepare import PIXEL_MODES  # the modes load_dataset turns into "none" for regression

    sine = str(cfg.dataset).strip().lower() == "sine"
    if given(cfg, "normalize") and sine and cfg.normalize in PIXEL_MODES:
        raise ConfigError(
            f"normalize = {cfg.normalize!r}: no effect on the sine dataset ({' and '.join(PIXEL_MODES)} rescale "
            "0..255 pixel values and leave sine data as it is; only standard rescales it); drop --normalize"
        )
    if cfg.augment and sine:
        raise ConfigError("augment: shifts and rotations apply to images, and the sine dataset is not images; "
                          "drop --augment")


# -- defaults ----------------------------------------------------------------------------------------


def _signature_default(cls: type, name: str) -> Any:
    return inspect.signature(cls).parameters[name].default


def default_of(key: str, cfg: RunConfig) -> tuple[Any, bool]:
    """(the value `key` takes in this configuration when it is not set, True) or (a description, False)."""
    from xnet.losses import CrossEntropy
    from xnet.nn.activations import ELU, LeakyReLU
    from xnet.nn.batchnorm import BatchNorm1D
    from xnet.optim import CosineSchedule, OneCycleSchedule, resolve_lr
    from xnet.optim.factory import NAMED_MOMENTUM, OPTIMIZER_CLASSES

    optimizer = OPTIMIZER_CLASSES[cfg.optimizer]
    described = {
        ("exponential", "gamma"): "so that the last epoch runs at 1% of lr",
        ("step", "step_size"): "unset (the milestones decide)",
        ("step", "milestones"): "at 1/3 and 2/3 of the run",
        ("cyclic", "step_size"): "2 epochs (a cycle of 4)",
        ("cyclic", "base_lr"): "0.01 * lr",
    }
    if (cfg.schedule, key) in described:
        return described[(cfg.schedule, key)], False
    if (cfg.schedule, key) == ("step", "gamma"):
        return 0.1, True  # get_schedule's, as PyTorch's StepLR
    if cfg.schedule == "plateau" and key in ("gamma", "patience", "threshold", "cooldown", "min_lr"):
        from xnet.optim.plateau import PlateauSchedule

        return _signature_default(PlateauSchedule, "factor" if key == "gamma" else key), True
    if key == "lr":
        return resolve_lr(cfg.optimizer), True
    if key == "momentum":
        return (NAMED_MOMENTUM if cfg.optimizer in ("momentum", "nesterov") else 0.0), True
    if key in ("weight_decay", "beta1", "beta2", "eps", "rho", "initial_accumulator_value", "bias_correction",
               "momentum_decay", "decoupled_weight_decay"):  # fmt: skip
        return _signature_default(optimizer, key), True
    classes: dict[str, tuple[type, str]] = {
        "label_smoothing": (CrossEntropy, "label_smoothing"),
        "alpha": (ELU if cfg.activation == "elu" else LeakyReLU, "alpha"),
        "bn_momentum": (BatchNorm1D, "momentum"),
        "bn_eps": (BatchNorm1D, "eps"),
        "floor": (CosineSchedule, "floor"),
        "pct_start": (OneCycleSchedule, "pct_start"),
        "div_factor": (OneCycleSchedule, "div_factor"),
        "final_div_factor": (OneCycleSchedule, "final_div_factor"),
    }
    if key in classes:
        return _signature_default(*classes[key]), True
    return getattr(_defaults(type(cfg)), key), True  # None: off (clip_norm, clip_value)


def applicable(cfg: RunConfig) -> list[str]:
    """The optimizer, loss, schedule and layer options this configuration reads, in RunConfig order."""
    keys = {k for kind, table in KINDS.items() for k in (*EVERY[kind], *table[getattr(cfg, kind)])}
    keys |= {"clip_norm", "clip_value"}
    model = set(MODEL_OPTIONS.get(cfg.model, ()))
    if cfg.activation not in ALPHA_ACTIVATIONS:
        model.discard("alpha")
    if cfg.model != "bn-cnn" and not cfg.batch_norm:
        model -= {"bn_momentum", "bn_eps"}
    keys |= model & {"alpha", "bn_momentum", "bn_eps"}
    return [k for k in cfg.to_dict() if k in keys]


def option_keys() -> set[str]:
    """Every option that only some optimizers, losses, schedules or layers read, or every one of a kind."""
    keys = {k for kind, table in KINDS.items() for k in (*EVERY[kind], *(k for v in table.values() for k in v))}
    return keys | {"alpha", "bn_momentum", "bn_eps"}


def defaults_used(cfg: RunConfig) -> list[str]:
    """TOML comment lines for the options this run reads and left unset (None: the default of its choice)."""
    lines = []
    for key in applicable(cfg):
        if getattr(cfg, key) is not None:
            continue
        # step_size and milestones exclude each other: once one is set, the other's default says nothing
        if (key == "step_size" and cfg.milestones is not None) or (key == "milestones" and cfg.step_size is not None):
            continue
        value, literal = default_of(key, cfg)
        if value is None:
            continue  # an off switch (clip_norm, clip_value): nothing to show
        lines.append(f"# {key} = {toml_value(value)}" if literal else f"# {key}: {value}")
    return lines
