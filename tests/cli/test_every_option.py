"""Every run option: set on the command line, in a TOML file and in Python, it resolves to the same objects.

One table drives it: an option, the choices it needs, its value as a flag and as TOML, and the
Python API call it stands for. Bad values and options the choice does not read are one line, exit 2.
"""

from __future__ import annotations

import pytest
from clirun import one_line_error, xnet

from xnet.config import DEFAULTS, RunConfig, config_dict_from_toml, to_toml, validate
from xnet.losses import CrossEntropy
from xnet.models import build_mlp
from xnet.nn.module import build_on
from xnet.optim import (
    L1,
    L2,
    SGD,
    Adagrad,
    Adam,
    AdamW,
    ConstantSchedule,
    CosineSchedule,
    CyclicSchedule,
    ExponentialSchedule,
    NAdam,
    OneCycleSchedule,
    RAdam,
    RMSprop,
    StepSchedule,
    WarmupSchedule,
)
from xnet.runs.build import build_loss, build_model, build_optimizer, build_schedule
from xnet.study import load_study

EPOCHS, SPE = 4, 10  # the runs below: 4 epochs of 10 steps
TOTAL = EPOCHS * SPE
INPUT, OUTPUTS = (6,), 3


class Captured(Exception):
    """Raised by the stand-in for run_training: the resolved configuration, and no training."""

    def __init__(self, cfg: RunConfig):
        super().__init__("captured")
        self.cfg = cfg


@pytest.fixture
def captured(monkeypatch):
    """cli(*args) -> the RunConfig `xnet train ARGS` would train with (nothing is trained or written)."""
    from xnet.runs import run

    def fake_run_training(cfg, *args, **kwargs):
        raise Captured(cfg)

    monkeypatch.setattr(run, "run_training", fake_run_training)

    def cli(*args: str) -> RunConfig:
        with pytest.raises(Captured) as e:
            xnet("train", "--epochs", str(EPOCHS), "-q", *args)
        return e.value.cfg

    return cli


def _mlp(**kw):
    return build_mlp(INPUT, OUTPUTS, DEFAULTS.hidden, kw.pop("activation", "relu"), **kw)


# option: (the choices it needs as flags, its flag's value (None: a switch), its TOML value, (part, the Python
# API's object)) where the Python object is built from p (the model's parameters) and lr (the optimizer's lr)
ROWS = {
    "loss_reduction": ((), "sum", '"sum"', lambda p, lr: ("loss", CrossEntropy(reduction="sum"))),
    "label_smoothing": ((), "0.1", "0.1", lambda p, lr: ("loss", CrossEntropy(label_smoothing=0.1))),
    "lr": ((), "0.01", "0.01", lambda p, lr: ("optimizer", Adam(p, lr=0.01))),
    "momentum": (("--optimizer", "sgd"), "0.5", "0.5", lambda p, lr: ("optimizer", SGD(p, lr=0.1, momentum=0.5))),
    "beta1": ((), "0.8", "0.8", lambda p, lr: ("optimizer", Adam(p, beta1=0.8))),
    "beta2": (("--optimizer", "adamw"), "0.99", "0.99", lambda p, lr: ("optimizer", AdamW(p, beta2=0.99))),
    "eps": (("--optimizer", "rmsprop"), "1e-6", "1e-6", lambda p, lr: ("optimizer", RMSprop(p, eps=1e-6))),
    "rho": (("--optimizer", "rmsprop"), "0.8", "0.8", lambda p, lr: ("optimizer", RMSprop(p, rho=0.8))),
    "initial_accumulator_value": (
        ("--optimizer", "adagrad"), "0.1", "0.1", lambda p, lr: ("optimizer", Adagrad(p, initial_accumulator_value=0.1))
    ),
    "bias_correction": ((), None, "false", lambda p, lr: ("optimizer", Adam(p, bias_correction=False))),
    "momentum_decay": (("--optimizer", "nadam"), "0.01", "0.01", lambda p, lr: ("optimizer", NAdam(
        p, momentum_decay=0.01)
    )),
    "decoupled_weight_decay": (("--optimizer", "radam", "--weight-decay", "0.1"), None, "true", lambda p, lr: (
        "optimizer", RAdam(p, weight_decay=0.1, decoupled_weight_decay=True)
    )),
    "bias_init": ((), "torch", '"torch"', lambda p, lr: ("model", _mlp(bias_init="torch"))),
    "weight_decay": (("--optimizer", "adamw"), "0", "0", lambda p, lr: ("optimizer", AdamW(p, weight_decay=0.0))),
    "clip_norm": ((), "1.5", "1.5", lambda p, lr: ("optimizer", Adam(p, clip_norm=1.5))),
    "clip_value": ((), "0.5", "0.5", lambda p, lr: ("optimizer", Adam(p, clip_value=0.5))),
    "l1": ((), "1e-4", "1e-4", lambda p, lr: ("optimizer", Adam(p, regularizers=[L1(1e-4)]))),
    "l2": ((), "1e-4", "1e-4", lambda p, lr: ("optimizer", Adam(p, regularizers=[L2(1e-4)]))),
    "include_all": (("--l2", "1e-4"), None, "true", lambda p, lr: ("optimizer", Adam(
        p, regularizers=[L2(1e-4, include_all=True)])
    )),
    "decay_all": (("--weight-decay", "0.01"), None, "true", lambda p, lr: ("optimizer", Adam(
        [{"params": p, "decay_all": True}], weight_decay=0.01)
    )),
    "warmup_epochs": (("--schedule", "constant"), "1", "1", lambda p, lr: ("schedule", WarmupSchedule(
        ConstantSchedule(lr), SPE)
    )),
    "gamma": (("--schedule", "exponential"), "0.5", "0.5", lambda p, lr: ("schedule", ExponentialSchedule(
        lr, gamma=0.5, steps_per_epoch=SPE)
    )),
    "step_size": (("--schedule", "step"), "2", "2", lambda p, lr: ("schedule", StepSchedule(lr, step_size=2 * SPE))),
    "milestones": (("--schedule", "step"), "1,2.5", "[1, 2.5]", lambda p, lr: ("schedule", StepSchedule(
        lr, milestones=[SPE, 25])
    )),
    "floor": (("--schedule", "cosine"), "1e-5", "1e-5", lambda p, lr: ("schedule", CosineSchedule(
        lr, TOTAL, floor=1e-5)
    )),
    "base_lr": (("--schedule", "cyclic"), "1e-4", "1e-4", lambda p, lr: ("schedule", CyclicSchedule(
        lr, 2 * SPE, base_lr=1e-4)
    )),
    "pct_start": (("--schedule", "onecycle"), "0.2", "0.2", lambda p, lr: ("schedule", OneCycleSchedule(
        lr, TOTAL, pct_start=0.2)
    )),
    "div_factor": (("--schedule", "onecycle"), "10", "10", lambda p, lr: ("schedule", OneCycleSchedule(
        lr, TOTAL, div_factor=10.0)
    )),
    "final_div_factor": (("--schedule", "onecycle"), "100", "100", lambda p, lr: ("schedule", OneCycleSchedule(
        lr, TOTAL, final_div_factor=100.0)
    )),
    "alpha": (("--activation", "leaky_relu"), "0.2", "0.2", lambda p, lr: ("model", _mlp(
        activation="leaky_relu", activation_args={"alpha": 0.2})
    )),
    "bn_momentum": (("--batch-norm",), "0.3", "0.3", lambda p, lr: ("model", _mlp(
        batch_norm=True, bn_args={"momentum": 0.3})
    )),
    "bn_eps": (("--batch-norm",), "1e-3", "1e-3", lambda p, lr: ("model", _mlp(
        batch_norm=True, bn_args={"eps": 1e-3})
    )),
    "dropout": ((), "0.2", "0.2", lambda p, lr: ("model", _mlp(dropout=0.2))),
}  # fmt: skip


def resolved(cfg: RunConfig, backend) -> dict:
    """The objects a run of `cfg` builds, described by their config(): what the option must change."""
    with build_on(backend, "float64"):
        backend.rng.seed(0)
        model = build_model(cfg, INPUT, OUTPUTS)
        loss = build_loss(cfg, "classification")
    optimizer = build_optimizer(cfg, model)
    schedule = build_schedule(cfg, optimizer.lr, SPE)
    return {"model": model.config(), "loss": loss.config(), "optimizer": optimizer.config(),
            "schedule": schedule.config()}  # fmt: skip


def _toml(choices: tuple[str, ...], key: str, value: str) -> str:
    """The choice flags as TOML keys, then `key = value`."""
    lines = []
    it = iter(choices)
    for flag in it:
        name = flag.removeprefix("--").replace("-", "_")
        lines.append(f"{name} = true" if flag == "--batch-norm" else f"{name} = {_toml_literal(next(it))}")
    return "\n".join([*lines, f"{key} = {value}", ""])


@pytest.mark.parametrize("option", list(ROWS))
def test_cli_toml_and_python_resolve_to_the_same_objects(option, captured, tmp_path, backend):
    choices, flag_value, toml_value, python = ROWS[option]
    flag = "--" + option.replace("_", "-")
    if flag_value is None:  # a switch: on, or off where it is on by default
        flag = flag if getattr(DEFAULTS, option) is False else flag.replace("--", "--no-", 1)
    cli_cfg = captured(*choices, flag, *(() if flag_value is None else (flag_value,)))
    path = tmp_path / "run.toml"
    path.write_text(_toml(choices, option, toml_value))
    toml_cfg = captured("--config", path)
    assert getattr(cli_cfg, option) == getattr(toml_cfg, option) != getattr(DEFAULTS, option)
    ours = resolved(cli_cfg, backend)
    assert resolved(toml_cfg, backend) == ours
    # the option changed what the run builds (against the same choices without it)
    assert ours != resolved(captured(*choices), backend)
    # ... as the Python API's own argument does
    with build_on(backend, "float64"):
        backend.rng.seed(0)
        params = _mlp().parameters()
    part, obj = python(params, ours["optimizer"]["lr"])
    assert ours[part] == obj.config()
    # a study takes it as a grid axis
    study = tmp_path / "study.toml"
    study.write_text(f"[base]\n{_toml(choices, 'epochs', str(EPOCHS))}[grid]\n{option} = [{toml_value}]\n")
    assert resolved(load_study(study).variants[0].config, backend) == ours
    # and the run's config.toml reads back to the same configuration
    saved = tmp_path / "config.toml"
    saved.write_text(to_toml(cli_cfg))
    local = {"out": None, "quiet": False}  # where the run went and how it printed: not in config.toml
    assert validate(RunConfig(**config_dict_from_toml(saved))) == cli_cfg.replace(**local)


BAD = [
    (("--optimizer", "adam", "--beta1", "1.5"), "beta1: expected a value in [0, 1), got 1.5"),
    (("--optimizer", "adamw", "--beta2", "-0.1"), "beta2: expected a value in [0, 1)"),
    (("--optimizer", "rmsprop", "--eps", "0"), "eps: expected a positive number, got 0.0"),
    (("--optimizer", "rmsprop", "--rho", "1"), "rho: expected a value in [0, 1)"),
    (("--optimizer", "adagrad", "--initial-accumulator-value", "-1"), "initial_accumulator_value: expected a non-neg"),
    (("--optimizer", "sgd", "--momentum", "1.2"), "momentum: expected a value in [0, 1)"),
    (("--label-smoothing", "1"), "label_smoothing: expected a value in [0, 1)"),
    (("--loss-reduction", "none"), "loss_reduction: 'none' gives one loss per sample"),
    (("--loss-reduction", "avg"), "loss_reduction: unknown value 'avg' (valid: mean, sum)"),
    (("--weight-decay", "-1"), "weight_decay: expected a non-negative number"),
    (("--clip-norm", "0"), "clip_norm: expected a positive number"),
    (("--clip-value", "-1"), "clip_value: expected a positive number"),
    (("--schedule", "exponential", "--gamma", "0"), "gamma: expected a positive number"),
    (("--schedule", "step", "--step-size", "0"), "step_size: expected a positive number"),
    (("--schedule", "step", "--milestones", "3,1"), "milestones: expected positive epochs in increasing order"),
    (("--schedule", "step", "--milestones", "ten"), "milestones: expected epochs like 10,20, got 'ten'"),
    (("--schedule", "cosine", "--floor", "-1"), "floor: expected a non-negative number"),
    (("--schedule", "cyclic", "--base-lr", "-1"), "base_lr: expected a non-negative number"),
    (("--schedule", "onecycle", "--pct-start", "1"), "pct_start: expected a fraction in (0, 1)"),
    (("--schedule", "onecycle", "--div-factor", "0"), "div_factor: expected a positive number"),
    (("--schedule", "onecycle", "--final-div-factor", "-5"), "final_div_factor: expected a positive number"),
    (("--warmup-epochs", "-1"), "warmup_epochs: expected a non-negative number"),
    (("--activation", "leaky_relu", "--alpha", "inf"), "alpha: expected a finite number, got inf"),
    (("--batch-norm", "--bn-momentum", "2"), "bn_momentum: expected a value in [0, 1]"),
    (("--batch-norm", "--bn-eps", "0"), "bn_eps: expected a positive number"),
    (("--optimizer", "nadam", "--momentum-decay", "-1"), "momentum_decay: expected a non-negative number"),
    (("--optimizer", "adadelta", "--rho", "1"), "rho: expected a value in [0, 1)"),
    (("--optimizer", "lion", "--beta2", "1"), "beta2: expected a value in [0, 1)"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_bad_value_is_one_line_from_the_cli_and_from_toml(args, message, tmp_path):
    line = one_line_error(xnet("train", "--epochs", "1", "-q", *args, "--out", tmp_path / "run"))
    assert message in line
    body = _toml(args[:-2], args[-2].removeprefix("--").replace("-", "_"), _toml_literal(args[-1]))
    path = tmp_path / "bad.toml"
    path.write_text(body)
    assert message.replace("got 0.0", "got 0") in one_line_error(xnet("train", "--config", path, "-q"))
    assert not (tmp_path / "run").exists()


def _toml_literal(text: str) -> str:
    """A flag's text as the TOML value it stands for: 1e-4, [3,1], "sum"."""
    try:
        float(text)
        return text
    except ValueError:
        pass
    if "," in text and text.replace(",", "").replace(".", "").isdigit():
        return f"[{text}]"
    return f'"{text}"'


def test_a_flag_that_is_no_number_is_one_line():
    line = one_line_error(xnet("train", "--beta1", "high"))
    assert "--beta1" in line and "valid number" in line


UNREAD = [
    (("--optimizer", "sgd", "--beta1", "0.8"), ["beta1 = 0.8", "optimizer 'sgd'",
                                                "only adam, adamw, adamax, nadam, radam, lion use beta1",
                                                 "drop --beta1"]),
    (("--optimizer", "adam", "--rho", "0.8", "--momentum", "0.5"), ["momentum = 0.5, rho = 0.8", "'adam'",
                                                                    "drop --momentum, --rho"]),
    (("--optimizer", "adam", "--initial-accumulator-value", "0.1"), ["only adagrad use initial_accumulator_value"]),
    (("--optimizer", "sgd", "--no-bias-correction"), ["bias_correction = false", "drop --no-bias-correction"]),
    (("--optimizer", "sgd", "--eps", "1e-6"), [
        "only adagrad, rmsprop, adam, adamw, adadelta, adamax, nadam, radam use eps"]),
    (("--loss", "mse", "--label-smoothing", "0.1"), ["label_smoothing = 0.1", "loss 'mse'"]),
    (("--schedule", "cosine", "--gamma", "0.5"), ["gamma = 0.5", "schedule 'cosine'", "only step, exponential"]),
    (("--schedule", "step", "--floor", "0.001"), ["floor = 0.001", "only cosine use floor"]),
    (("--schedule", "cosine", "--pct-start", "0.2"), ["pct_start = 0.2", "only onecycle"]),
    (("--schedule", "exponential", "--step-size", "2"), ["step_size = 2.0", "only step, cyclic use step_size"]),
    (("--schedule", "step", "--step-size", "2", "--milestones", "1"), ["step_size and milestones both set"]),
    (("--schedule", "onecycle", "--warmup-epochs", "1"), ["onecycle schedule warms up by itself"]),
    (("--alpha", "0.2",), ["alpha = 0.2", "activation 'relu'", "only leaky_relu and elu"]),
    (("--model", "small-cnn", "--alpha", "0.2"), ["alpha = 0.2", "small-cnn preset"]),
    (("--bn-eps", "0.001",), ["bn_eps = 0.001", "without batch norm"]),
    (("--decay-all",), ["decay_all = true", "without weight decay", "drop --decay-all"]),
    (("--optimizer", "adamw", "--weight-decay", "0", "--decay-all"), ["without weight decay"]),
    (("--include-all",), ["include_all = true", "without an L1 or L2 penalty"]),
    (("--optimizer", "nadam", "--decoupled-weight-decay"), ["decoupled_weight_decay = true", "without weight decay"]),
    (("--optimizer", "adamw", "--momentum-decay", "0.01"), ["only nadam use momentum_decay"]),
    (("--optimizer", "lion", "--rho", "0.9"), ["rho = 0.9", "only rmsprop, adadelta use rho"]),
]  # fmt: skip


@pytest.mark.parametrize(("args", "parts"), UNREAD, ids=[" ".join(a) for a, _ in UNREAD])
def test_an_option_the_choice_does_not_read_is_one_line(args, parts, tmp_path):
    line = one_line_error(xnet("train", "--epochs", "2", "-q", *args, "--out", tmp_path / "run"))
    for part in parts:
        assert part in line, part
    assert not (tmp_path / "run").exists()


def test_a_milestone_shorter_than_a_step_is_refused_when_the_steps_are_known():
    from xnet.errors import ConfigError

    cfg = validate(RunConfig(schedule="step", milestones=[0.01, 1]))
    with pytest.raises(ConfigError, match="milestones: 0.01 epochs is less than one step"):
        build_schedule(cfg, 0.1, SPE)
    cfg = validate(RunConfig(schedule="step", milestones=[1.01, 1.02]))
    with pytest.raises(ConfigError, match=r"fall on steps \[10, 10\].*two share a step"):
        build_schedule(cfg, 0.1, SPE)
