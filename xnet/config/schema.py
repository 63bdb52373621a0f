"""The run configuration: RunConfig, its fields' choices and defaults, and their validation.

One file, because RunConfig.replace validates: the schema and its checks cannot live apart without
importing each other. The parsers of single option values are in parsers.py.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from xnet.backends.rng import SEED_LIMIT
from xnet.config.options import check_applicable
from xnet.config.parsers import (  # noqa: F401 (check_callback_spec: still importable from here)
    check_callback_spec,
    parse_batch_size,
    parse_callbacks,
    parse_hidden,
    parse_milestones,
)
from xnet.errors import ConfigError
from xnet.optim.plateau import MONITORS

CHOICES: dict[str, tuple[str, ...]] = {
    "activation": ("relu", "leaky_relu", "sigmoid", "tanh", "gelu", "silu", "elu", "softplus"),
    "loss": ("cross-entropy", "mse", "softmax-mse"),
    "optimizer": (
        "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "adadelta", "adamax", "nadam", "radam",
        "lion",
    ),  # fmt: skip
    "schedule": ("constant", "step", "exponential", "cosine", "cyclic", "onecycle", "plateau"),
    "monitor": MONITORS,
    "threshold_mode": ("rel", "abs"),
    "normalize": ("unit", "centered", "standard"),
    "dtype": ("float32", "float64"),
    "loss_reduction": ("mean", "sum"),
}


@dataclass
class RunConfig:
    """Everything that defines a training run; `xnet train` flags and TOML keys share these names."""

    # None: the default of the chosen optimizer, loss, schedule or layer (`xnet options` lists them)
    model: str = "mlp"
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    activation: str = "relu"
    alpha: float | None = None
    init: str | None = None
    bias_init: str | None = None  # None: zeros, or the init's own rule (init "torch")
    loss: str = "cross-entropy"
    loss_reduction: str = "mean"
    label_smoothing: float = 0.0
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    eps: float | None = None
    rho: float | None = None
    initial_accumulator_value: float | None = None
    bias_correction: bool = True
    momentum_decay: float | None = None
    decoupled_weight_decay: bool = False  # nadam, radam: weight decay as AdamW's
    l1: float = 0.0
    l2: float = 0.0
    include_all: bool = False  # L1/L2 on biases and batch-norm parameters too
    weight_decay: float | None = None
    decay_all: bool = False  # weight decay on biases and batch-norm parameters too
    clip_norm: float | None = None
    clip_value: float | None = None
    dropout: float = 0.0
    batch_norm: bool = False
    bn_momentum: float | None = None
    bn_eps: float | None = None
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    gamma: float | None = None
    step_size: float | None = None  # epochs
    milestones: list[float] | None = None  # epochs
    floor: float | None = None
    base_lr: float | None = None
    pct_start: float | None = None
    div_factor: float | None = None
    final_div_factor: float | None = None
    monitor: str = "val_loss"  # plateau: the epoch metric whose plateau lowers the lr
    patience: int | None = None  # plateau: epochs without improvement before the lr drops
    threshold: float | None = None  # plateau: how much better counts as an improvement
    threshold_mode: str = "rel"  # plateau: threshold relative to the best value, or absolute
    cooldown: int | None = None  # plateau: epochs after a drop before bad epochs count again
    min_lr: float | None = None  # plateau: the lr never drops below this
    epochs: int = 6
    batch_size: int | str = 128
    val_split: float = 0.0
    normalize: str = "unit"
    augment: bool = False
    dataset: str = "mnist"
    data_dir: str | None = None
    limit: int | None = None
    device: str = "cpu"
    dtype: str = "float32"
    seed: int = 0
    early_stopping: int = 0
    sync_batch_norm: bool = False  # under mpiexec: batch norm over the global batch (xnet/parallel/)
    checkpoint_every: int | str | None = None  # steps (500) or a time ("10m") between checkpoints; None: each epoch
    callbacks: list[str] = field(default_factory=list)  # "package.module:name" of Trainer.fit callbacks
    out: str | None = None
    quiet: bool = False
    layers: list[dict[str, Any]] | None = None  # a custom Sequential, from [[model.layers]]

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with `changes` applied and validated."""
        return validate(dataclasses.replace(self, **changes))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field."""
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
DEFAULTS = RunConfig()
# keys that describe where a run goes, not what it computes (a saved config.toml omits them)
LOCAL_KEYS = ("out", "quiet", "data_dir")


def type_ok(name: str, value: Any) -> bool:
    """Whether `value` has a type RunConfig's field `name` takes (None only where the field allows it)."""
    kind = FIELDS[name].type
    if value is None:  # TOML has no null; a saved config holds None for unset options
        return "None" in kind
    if name == "hidden":
        return isinstance(value, (list, str))
    if name == "batch_size":
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    if name in ("milestones", "callbacks"):
        return isinstance(value, (list, str))
    if isinstance(value, bool):
        return "bool" in kind
    if isinstance(value, int):
        return "int" in kind or "float" in kind
    if isinstance(value, float):
        return "float" in kind
    if isinstance(value, str):
        return "str" in kind
    return False


def _check_model(cfg: RunConfig) -> None:
    """A preset name, or "custom" with a non-empty [[model.layers]] list."""
    from xnet.models import PRESETS

    if cfg.layers is not None and not cfg.layers:
        raise ConfigError("model: the [model] table's layer list is empty; add [[model.layers]] tables")
    if cfg.layers:
        if cfg.model not in ("custom", DEFAULTS.model):
            raise ConfigError(
                f"model: {cfg.model!r} does not apply: the config file defines its own layers ([[model.layers]]); "
                "drop --model or the layers"
            )
        cfg.model = "custom"
    elif cfg.model == "custom":
        raise ConfigError("model: 'custom' needs [[model.layers]] tables in a config file (--config)")
    elif cfg.model not in PRESETS:
        raise ConfigError(f"model: unknown value {cfg.model!r} (valid: {', '.join(PRESETS)})")


def validate(cfg: RunConfig, training: bool = True) -> RunConfig:
    """Check every value; raise ConfigError naming the option, the value and the valid ones.

    training=True (a run about to train) also rejects combinations a new run must not have: options
    with no effect, early stopping without a validation split, a warmup as long as the run, bad init
    arguments. training=False skips those, so a model trained by an older version still loads.
    """
    _check_model(cfg)
    for key, options in CHOICES.items():
        if getattr(cfg, key) not in options and not (key == "loss_reduction" and cfg.loss_reduction == "none"):
            raise ConfigError(f"{key}: unknown value {getattr(cfg, key)!r} (valid: {', '.join(options)})")
    cfg.hidden = parse_hidden(cfg.hidden)
    cfg.batch_size = parse_batch_size(cfg.batch_size)
    if isinstance(cfg.epochs, bool) or not isinstance(cfg.epochs, int) or cfg.epochs <= 0:
        raise ConfigError(f"epochs: expected a positive integer, got {cfg.epochs!r}")
    if cfg.lr is not None and not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ConfigError(f"lr: expected a positive number, got {cfg.lr!r}")
    if not 0 <= cfg.dropout < 1:
        raise ConfigError(f"dropout: expected a probability in [0, 1), got {cfg.dropout!r}")
    if not 0 <= cfg.val_split < 1:
        raise ConfigError(f"val_split: expected a fraction in [0, 1), got {cfg.val_split!r}")
    if cfg.loss_reduction == "none":
        raise ConfigError(
            "loss_reduction: 'none' gives one loss per sample, and training needs one number per batch: use mean or "
            "sum ('none' is for the Python API, e.g. CrossEntropy(reduction='none'))"
        )
    _check_ranges(cfg)
    cfg.milestones = parse_milestones(cfg.milestones)
    cfg.callbacks = parse_callbacks(cfg.callbacks)
    if cfg.limit is not None and cfg.limit <= 0:
        raise ConfigError(f"limit: expected a positive integer, got {cfg.limit!r}")
    if cfg.early_stopping < 0:
        raise ConfigError(f"early_stopping: expected a patience >= 0 (0 = off), got {cfg.early_stopping!r}")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or not 0 <= cfg.seed < SEED_LIMIT:
        raise ConfigError(f"seed: must be an integer in [0, 2**63), got {cfg.seed!r}")
    from xnet.train.cadence import parse_checkpoint_every

    cfg.checkpoint_every = parse_checkpoint_every(cfg.checkpoint_every)
    if training:
        _check_for_training(cfg)
    return cfg


# the values each number option takes: (test, what the message says is expected)
_RANGES: dict[str, tuple[Any, str]] = {}
for _keys, _test, _text in (
    (("momentum", "beta1", "beta2", "rho", "label_smoothing"), lambda v: 0 <= v < 1, "a value in [0, 1)"),
    (("pct_start",), lambda v: 0 < v < 1, "a fraction in (0, 1)"),
    (("bn_momentum",), lambda v: 0 <= v <= 1, "a value in [0, 1]"),
    (("eps", "bn_eps", "clip_norm", "clip_value", "gamma", "step_size", "div_factor", "final_div_factor"),
     lambda v: math.isfinite(v) and v > 0, "a positive number"),
    (("l1", "l2", "weight_decay", "warmup_epochs", "initial_accumulator_value", "floor", "base_lr",
      "momentum_decay", "threshold", "min_lr"),
     lambda v: math.isfinite(v) and v >= 0, "a non-negative number"),
    (("alpha",), math.isfinite, "a finite number"),
):  # fmt: skip
    _RANGES.update(dict.fromkeys(_keys, (_test, _text)))


def _check_ranges(cfg: RunConfig) -> None:
    """Every number option that is set lies in its range (None: the chosen optimizer's or layer's default)."""
    for key, (test, expected) in _RANGES.items():
        v = getattr(cfg, key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not test(v):
            raise ConfigError(f"{key}: expected {expected}, got {v!r}")
    for key in ("patience", "cooldown"):  # counts of epochs
        v = getattr(cfg, key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ConfigError(f"{key}: expected a whole number of epochs >= 0, got {v!r}")


def _check_for_training(cfg: RunConfig) -> None:
    """What a new run must not start with, though each value on its own is valid."""
    if cfg.early_stopping and not cfg.val_split:
        raise ConfigError(
            f"early_stopping: watches the validation loss, but there is no validation split; "
            f"set val_split (--val-split 0.1) or remove early_stopping={cfg.early_stopping}"
        )
    if cfg.schedule == "plateau" and cfg.monitor.startswith("val_") and not cfg.val_split:
        raise ConfigError(
            f"schedule plateau: lowers the lr when {cfg.monitor} stops improving, but there is no validation split; "
            "set val_split (--val-split 0.1) or monitor a training metric (--monitor train_loss)"
        )
    if cfg.out is not None and not str(cfg.out).strip():
        raise ConfigError("out: the output folder name is empty; name a folder (--out runs/NAME) or omit --out")
    if cfg.warmup_epochs >= cfg.epochs:
        raise ConfigError(
            f"warmup_epochs: a warmup of {cfg.warmup_epochs:g} epochs is not shorter than the run's {cfg.epochs} "
            f"epoch{'s' * (cfg.epochs != 1)}; lower warmup_epochs or raise epochs"
        )
    check_init(cfg.init)
    check_init(cfg.bias_init, "bias_init")
    check_applicable(cfg)


def check_init(spec: str | None, key: str = "init") -> None:
    """An unknown initialiser or a bad argument is a config error before any data is read."""
    from xnet.nn.init import parse_init

    if spec is not None:
        try:
            parse_init(spec)
        except ValueError as e:
            raise ConfigError(f"{key}: {e}") from None
