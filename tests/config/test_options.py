"""The options tables match the Python API they stand for, and config.toml records the defaults a run used."""

from __future__ import annotations

import inspect

from xnet.config import RunConfig, config_dict_from_toml, to_toml, validate
from xnet.config.options import LOSS_OPTIONS, OPTIMIZER_OPTIONS, SCHEDULE_OPTIONS, default_of, defaults_used
from xnet.losses import CrossEntropy
from xnet.optim import OneCycleSchedule, get_schedule
from xnet.optim.factory import OPTIMIZER_CLASSES


def _arguments(cls) -> set[str]:
    return set(inspect.signature(cls).parameters)


def test_each_optimizer_option_is_an_argument_of_that_optimizer_and_only_of_those():
    every = {k for keys in OPTIMIZER_OPTIONS.values() for k in keys} - {"bias_correction"}
    for name, keys in OPTIMIZER_OPTIONS.items():
        takes = _arguments(OPTIMIZER_CLASSES[name])
        assert set(keys) <= takes, name
        # an option some optimizers read and this one does not: it must not take it either
        assert not (every - set(keys)) & takes, name


def test_loss_and_schedule_options_are_their_arguments():
    assert set(LOSS_OPTIONS["cross-entropy"]) <= _arguments(CrossEntropy)
    assert set(SCHEDULE_OPTIONS["onecycle"]) <= _arguments(OneCycleSchedule)
    # the schedule names the table gives get_schedule are accepted by it
    for name, keys in SCHEDULE_OPTIONS.items():
        values = {"warmup_epochs": None, "gamma": 0.5, "step_size": 3, "milestones": None, "floor": 0.0,
                  "base_lr": 0.001, "pct_start": 0.2, "div_factor": 10.0, "final_div_factor": 100.0,
                  "monitor": "train_loss", "patience": 2, "threshold": 0.01, "threshold_mode": "abs", "cooldown": 1,
                  "min_lr": 0.0}  # fmt: skip
        kw = {k: values[k] for k in keys if values[k] is not None}
        if name == "plateau":  # the one name that differs (PYTHON_NAMES): plateau's gamma is its factor
            kw["factor"] = kw.pop("gamma")
        assert get_schedule(name, 0.1, 40, 10, **kw).config()["type"] == name


def test_defaults_come_from_the_python_classes():
    assert default_of("beta2", RunConfig(optimizer="adamw")) == (0.999, True)
    assert default_of("weight_decay", RunConfig(optimizer="adamw")) == (0.01, True)
    assert default_of("weight_decay", RunConfig(optimizer="adam")) == (0.0, True)
    assert default_of("momentum", RunConfig(optimizer="nesterov")) == (0.9, True)
    assert default_of("momentum", RunConfig(optimizer="sgd")) == (0.0, True)
    assert default_of("lr", RunConfig(optimizer="sgd")) == (0.1, True)
    assert default_of("bn_eps", RunConfig()) == (1e-5, True)
    assert default_of("gamma", RunConfig(schedule="exponential"))[1] is False  # derived from the run's length


def test_config_toml_records_the_defaults_it_used_and_leaves_out_what_no_one_reads(tmp_path):
    cfg = validate(RunConfig(optimizer="rmsprop", rho=0.8, schedule="step", milestones=[2], loss="mse"))
    text = to_toml(cfg)
    assert "rho = 0.8\n" in text and "milestones = [2]\n" in text
    assert "# eps = 1e-08\n" in text and "# lr = 0.001\n" in text and "# gamma = 0.1\n" in text
    for unread in ("beta1", "bias_correction", "label_smoothing", "momentum", "step_size", "floor", "alpha", "bn_eps"):
        assert unread not in text, unread
    assert "\n".join(defaults_used(cfg)) + "\n" in text  # as the file's last lines, comments
    path = tmp_path / "config.toml"
    path.write_text(text)
    assert validate(RunConfig(**config_dict_from_toml(path))) == cfg
