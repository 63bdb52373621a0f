"""`xnet options`: the listing, one choice or option, and a config.toml whose optimizer a flag changes."""

from __future__ import annotations

import pytest
from clirun import one_line_error, xnet

from xnet.config import RunConfig, to_toml, validate


def test_a_flag_switching_to_a_choice_that_does_not_read_a_saved_option_names_it(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(to_toml(validate(RunConfig(optimizer="rmsprop", rho=0.8))))
    line = one_line_error(xnet("train", "--config", path, "--optimizer", "adam", "--out", tmp_path / "run"))
    assert "rho = 0.8" in line and "drop --rho" in line


def test_xnet_options_lists_every_choice_with_its_defaults():
    r = xnet("options")
    assert r.code == 0, r.err
    rows = {line.split()[0]: line for line in r.out.splitlines() if line.startswith("  ")}
    assert "beta1 = 0.9" in rows["adam"] and "beta2 = 0.999" in rows["adamw"] and "weight_decay = 0.01" in rows["adamw"]
    assert "initial_accumulator_value = 0.0" in rows["adagrad"] and "rho = 0.9" in rows["rmsprop"]
    assert "momentum = 0.9" in rows["nesterov"] and "momentum = 0.0" in rows["sgd"]
    assert "label_smoothing = 0.0" in rows["cross-entropy"]
    assert "pct_start = 0.3" in rows["onecycle"] and "floor = 0.0" in rows["cosine"]
    assert "alpha = 0.01" in rows["leaky_relu"] and "alpha = 1.0" in rows["elu"]
    assert "bn_eps" in rows["bn-cnn"] and "alpha" not in rows["bn-cnn"]
    for line in ("loss_reduction  reduction= on every loss", "milestones      milestones= of StepSchedule, in steps"):
        assert line in r.out


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("adam", "optimizer adam: beta1 = 0.9, beta2 = 0.999, eps = 1e-08, bias_correction = true, lr = 0.001\n"),
        ("beta1", "option beta1: read by optimizer adam, optimizer adamw, optimizer adamax, optimizer nadam, "
                  "optimizer radam, optimizer lion\n"),
        ("bn-eps", "option bn_eps: read by model mlp, model cnn, model bn-cnn; "
                   "Python: BatchNorm1D/BatchNorm2D(eps=)\n"),
        ("LR", "option lr: read by every optimizer\n"),
        ("momentum", "optimizer momentum: momentum = 0.9, lr = 0.02\n"
                     "option momentum: read by optimizer sgd, optimizer momentum, optimizer nesterov\n"),
    ],
)  # fmt: skip
def test_xnet_options_name_shows_one_choice_or_what_reads_an_option(name, expected):
    r = xnet("options", name)
    assert (r.code, r.out) == (0, expected)


def test_xnet_options_with_an_unknown_name_is_one_line():
    line = one_line_error(xnet("options", "adamm"))
    assert "'adamm' is neither a choice" in line and "adam, adamax, adamw" in line


def test_the_readme_shows_the_listing_as_it_is():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert xnet("options").out in readme, "README.md's copy of `xnet options` is out of date"
