"""`xnet train`: batch norm with a last batch of one, --normalize modes that do nothing, honest help texts."""

from __future__ import annotations

import csv
import json

import pytest
from clirun import one_line_error, xnet

from xnet.config import RunConfig, validate
from xnet.errors import ConfigError

SMALL = ("--epochs", "1", "--hidden", "16", "--quiet")
SINE = ("--dataset", "sine", "--loss", "mse", "--hidden", "8", "--epochs", "1", "--quiet")


@pytest.mark.parametrize("limit,batch", [(57, "7"), (129, None)])
def test_batch_norm_trains_when_the_last_batch_would_hold_one_sample(tmp_path, mnist_dir, limit, batch):
    out = tmp_path / "bn"
    args = ("--batch-size", batch) if batch else ()
    r = xnet("train", "--batch-norm", "--limit", limit, *args, *SMALL, "--out", out)
    assert r.code == 0, r.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 1


def test_batch_norm_on_one_training_sample_is_one_line_and_writes_nothing(tmp_path, mnist_dir):
    out = tmp_path / "bn1"
    line = one_line_error(xnet("train", "--batch-norm", "--limit", "1", *SMALL, "--out", out))
    assert "batch norm" in line and "at least 2 samples per training batch" in line and "holds 1 sample" in line
    assert not out.exists()
    line = one_line_error(xnet("train", "--batch-norm", "--limit", "10", "--batch-size", "1", *SMALL, "--out", out))
    assert "the batch size is 1" in line
    assert not out.exists()


def test_a_pixel_normalize_mode_on_sine_is_refused(tmp_path):
    out = tmp_path / "run"
    line = one_line_error(xnet("train", *SINE, "--normalize", "centered", "--out", out))
    assert "normalize = 'centered'" in line and "no effect on the sine dataset" in line and "--normalize" in line
    assert not out.exists()
    with pytest.raises(ConfigError, match="no effect on the sine dataset"):
        validate(RunConfig(dataset=" Sine", loss="mse", normalize="centered"))


def test_normalize_modes_that_apply_are_accepted():
    validate(RunConfig(dataset="sine", loss="mse", normalize="standard"))
    validate(RunConfig(dataset="sine", loss="mse"))  # the default unit is not something the user set
    for mode in ("unit", "centered", "standard"):
        validate(RunConfig(dataset="mnist", normalize=mode))
    # an older run's saved config still loads (only a new run is refused)
    validate(RunConfig(dataset="sine", loss="mse", normalize="centered"), training=False)


def _help() -> str:
    """`xnet train --help` as one line of words: the help is wrapped to the terminal's width in boxes."""
    r = xnet("train", "--help")
    assert r.code == 0
    return " ".join(r.out.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())


def test_momentum_help_says_plain_sgd_has_none():
    text = _help()
    assert "[default: 0.9 for momentum and nesterov, 0 (none) for sgd]" in text
    momentum = text.split("--momentum", 1)[1].split(" --", 1)[0]
    assert "[default: 0.9]" not in momentum  # 0.9 is beta1's and rho's default, not plain sgd's momentum


def test_limit_help_says_the_test_set_is_cut_too():
    text = _help()
    assert "first N training samples and the first N//6 test samples" in text


def test_config_file_with_a_utf8_bom_reads(tmp_path):
    from xnet.config import config_dict_from_toml

    path = tmp_path / "run.toml"
    path.write_bytes("\ufeffepochs = 2\n".encode())
    assert config_dict_from_toml(path)["epochs"] == 2


def test_schedule_counts_the_steps_that_run(tmp_path):
    # 57 samples in batches of 7 run 8 steps an epoch (the 9th batch, of one sample, is skipped); an
    # exponential schedule planned on 9 steps would still be at 0.1 when epoch 2 starts
    r = xnet("train", "--dataset", "sine", "--loss", "mse", "--limit", "57", "--batch-size", "7", "--epochs", "3",
             "--schedule", "exponential", "--lr", "0.1", "--hidden", "4", "-q", "--out", tmp_path / "run")  # fmt: skip
    assert r.code == 0, r.err
    with open(tmp_path / "run" / "history.csv") as f:
        lrs = [float(row["lr"]) for row in csv.DictReader(f)]
    assert lrs == pytest.approx([0.1, 0.01, 0.001])


def test_every_run_option_has_a_flag_in_its_group(monkeypatch):
    import dataclasses

    monkeypatch.setenv("COLUMNS", "200")  # at 80 columns rich shortens the longest flag names
    r = xnet("train", "--help")
    panels, current = {}, None
    for line in r.out.splitlines():
        if line.startswith("╭─ "):
            current = line.strip("╭─╮ ")
        elif line.startswith("│ --") and current:
            panels[line.split()[1]] = current
    for field in dataclasses.fields(RunConfig):
        if field.name != "layers":
            assert "--" + field.name.replace("_", "-") in panels, field.name
    assert panels["--beta1"] == panels["--loss-reduction"] == "Loss and optimisation"
    assert panels["--milestones"] == "Learning-rate schedule" and panels["--label-smoothing"] == "Regularisation"
    assert panels["--bn-eps"] == "Model" and panels["--limit"] == "Data" and panels["--seed"] == "Run"
