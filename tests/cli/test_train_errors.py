"""`xnet train` mistakes caught before training, one line each, with no output folder left behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from clirun import one_line_error, xnet

from xnet.config import RunConfig, validate
from xnet.data import write_idx
from xnet.errors import ConfigError, DataError

SINE = ("--dataset", "sine", "--loss", "mse", "--hidden", "8", "--epochs", "1", "--quiet")
EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def make_idx(folder: Path, n: int = 60, size: int = 8, classes: int = 10, images: np.ndarray | None = None) -> str:
    """A tiny IDX classification set (train split only) in `folder`; returns its --dataset spec."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if images is None:
        images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
    write_idx(folder / "train-images-idx3-ubyte", images)
    write_idx(folder / "train-labels-idx1-ubyte", (np.arange(len(images)) % classes).astype(np.uint8))
    return f"idx:{folder}"


def layers_config(path: Path, body: str, layers: list[dict]) -> Path:
    """A config file: `body` (top-level keys), then [[model.layers]] tables."""
    text = body
    for layer in layers:
        text += "\n[[model.layers]]\n" + "".join(
            f"{k} = {json.dumps(v)}\n" for k, v in layer.items()
        )
    path.write_text(text)
    return path


def assert_nothing_written(out: Path) -> None:
    assert not out.exists(), sorted(p.name for p in out.iterdir())


# -- 1. data that cannot be trained on -------------------------------------------------------------


def test_unlabelled_csv_says_it_has_no_labels(tmp_path):
    csv = tmp_path / "test.csv"  # like Kaggle's test.csv: pixels only
    rows = ["pixel" + ",pixel".join(str(i) for i in range(16))]
    rows += [",".join(str((r * 16 + i) % 256) for i in range(16)) for r in range(10)]
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    line = one_line_error(xnet("train", "--dataset", f"csv:{csv}", "--epochs", "1", "-q", "--out", out))
    assert "no labels" in line and "nothing to train on" in line and "AttributeError" not in line
    assert_nothing_written(out)


def test_nan_in_the_data_is_a_data_error_not_divergence(tmp_path):
    images = np.random.default_rng(0).random((30, 6, 6)).astype(np.float32)
    images[3, 2, 2] = np.nan
    spec = make_idx(tmp_path / "nan", images=images)
    out = tmp_path / "run"
    line = one_line_error(xnet("train", "--dataset", spec, "--hidden", "8", "--epochs", "1", "-q", "--out", out))
    assert "NaN or infinite" in line and "train inputs" in line and "learning rate" not in line
    assert_nothing_written(out)


def tiny_trainer(outputs: int, **kwargs):
    """A Trainer of one Dense(4, outputs) layer with cross-entropy and SGD, on the CPU."""
    from xnet.backends import get_backend
    from xnet.losses import CrossEntropy
    from xnet.nn import Dense, Sequential, build_on
    from xnet.optim import SGD
    from xnet.train import Trainer

    backend = get_backend("cpu", seed=0)
    with build_on(backend, "float32"):
        model = Sequential(Dense(4, outputs))
        loss = CrossEntropy()
    return Trainer(model, loss, SGD(model.parameters(), 0.1), backend=backend, **kwargs)


def test_trainer_reports_nan_inputs_instead_of_divergence():
    x = np.ones((8, 4), np.float32)
    x[5, 1] = np.inf
    trainer = tiny_trainer(outputs=3, meta={"num_classes": 3})
    with pytest.raises(DataError, match="training inputs contain NaN or infinite"):
        trainer.fit((x, np.arange(8) % 3), epochs=1, batch_size=4)


# -- 2. out of memory ------------------------------------------------------------------------------


def test_out_of_memory_is_one_line(monkeypatch, tmp_path):
    def huge(*args, **kwargs):
        raise MemoryError("Unable to allocate 29.2 GiB for an array with shape (784, 5000000) and data type float64")

    monkeypatch.setattr("xnet.models.build_preset", huge)
    out = tmp_path / "run"
    line = one_line_error(xnet("train", *SINE, "--out", out))
    assert line.startswith("xnet: error: out of memory: Unable to allocate 29.2 GiB")
    assert_nothing_written(out)


# -- 3. the model's output width -------------------------------------------------------------------


def test_model_with_fewer_outputs_than_classes_fails_before_training(tmp_path):
    spec = make_idx(tmp_path / "digits", size=4)
    cfg = layers_config(tmp_path / "net.toml", f'dataset = "{spec}"\nepochs = 1\n',
                        [{"type": "flatten"}, {"type": "dense", "in_features": 16, "out_features": 7}])  # fmt: skip
    out = tmp_path / "run"
    line = one_line_error(xnet("train", "--config", cfg, "-q", "--out", out))
    assert "model outputs 7 values but the dataset has 10 classes" in line
    assert_nothing_written(out)


def test_regression_model_with_the_wrong_output_width(tmp_path):
    cfg = layers_config(tmp_path / "net.toml", 'dataset = "sine"\nloss = "mse"\nepochs = 1\n',
                        [{"type": "dense", "in_features": 1, "out_features": 3}])  # fmt: skip
    out = tmp_path / "run"
    line = one_line_error(xnet("train", "--config", cfg, "-q", "--out", out))
    assert "outputs 3 values per sample but the targets have 1" in line
    assert_nothing_written(out)


def test_trainer_api_checks_the_output_width_too():
    trainer = tiny_trainer(outputs=7, meta={"num_classes": 10})
    with pytest.raises(ValueError, match="outputs 7 values but the dataset has 10 classes"):
        trainer.fit((np.ones((20, 4), np.float32), np.arange(20) % 10), epochs=1)
    assert trainer.epoch == 0 and trainer.global_step == 0


# -- 4. initialiser arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("init", "message"),
    [
        ("normal(std=-1)", "std must be > 0"),
        ("uniform(a=1,b=-1)", "uniform(a, b) needs a < b"),
        ("normal(std=nan)", "std must be a finite number"),
        ("constant(value=inf)", "value must be a finite number"),
        ("kaiming_uniform(gain=-2)", "gain must be > 0"),
    ],
)
def test_bad_initialiser_arguments_fail_at_parse_time(init, message, tmp_path):
    out = tmp_path / "run"
    line = one_line_error(xnet("train", *SINE, "--init", init, "--out", out))
    assert line.startswith("xnet: error: init: ") and message in line and "diverged" not in line
    assert_nothing_written(out)


def test_good_initialiser_arguments_still_parse():
    from xnet.nn.init import parse_init

    assert parse_init("normal(std=0.02, mean=-1)") == ("normal", {"std": 0.02, "mean": -1.0})
    assert parse_init("uniform(a=-0.1, b=0.1)") == ("uniform", {"a": -0.1, "b": 0.1})
    assert parse_init("uniform(b=0.01)") == ("uniform", {"b": 0.01})


# -- 5. options that would be silently ignored ----------------------------------------------------


IGNORED = [
    (("--model", "small-cnn", "--activation", "tanh", "--dropout", "0.5", "--batch-norm", "--hidden", "7"),
     ["hidden = [7]", 'activation = "tanh"', "dropout = 0.5", "batch_norm = true", "small-cnn preset",
      "--hidden, --activation, --dropout, --batch-norm"]),
    (("--model", "cnn", "--hidden", "7"), ["hidden = [7]", "cnn preset", "drop --hidden"]),
    (("--model", "lenet5", "--dropout", "0.2"), ["dropout = 0.2", "lenet5 preset"]),
    (("--model", "bn-cnn", "--batch-norm"), ["batch_norm = true", "bn-cnn preset"]),
    (("--optimizer", "adam", "--momentum", "0.5"), ["momentum = 0.5", "'adam'", "drop --momentum"]),
    (("--optimizer", "rmsprop", "--momentum", "0.9"), ["momentum", "'rmsprop'"]),
    (("--dataset", "sine", "--augment"), ["augment", "sine", "not images"]),
    (("--out", ""), ["out: the output folder name is empty"]),
]  # fmt: skip


@pytest.mark.parametrize(("args", "parts"), IGNORED, ids=[" ".join(a) for a, _ in IGNORED])
def test_an_option_with_no_effect_is_an_error(args, parts, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `--out ""` used to fall back to runs/<timestamp> here
    line = one_line_error(xnet("train", "--epochs", "1", "-q", *args))
    for part in parts:
        assert part in line, part
    assert not (tmp_path / "runs").exists()


def test_options_in_a_config_file_are_checked_the_same_way(tmp_path):
    cfg = tmp_path / "cnn.toml"
    cfg.write_text('model = "cnn"\nhidden = [10]\nepochs = 1\n')
    assert "hidden = [10]" in one_line_error(xnet("train", "--config", cfg, "--out", tmp_path / "run"))
    cfg.write_text('optimizer = "sgd"\nbias_correction = false\nepochs = 1\n')
    assert "bias_correction" in one_line_error(xnet("train", "--config", cfg, "--out", tmp_path / "run"))
    layers = layers_config(tmp_path / "net.toml", 'dataset = "sine"\nloss = "mse"\nepochs = 1\n',
                           [{"type": "dense", "in_features": 1, "out_features": 1}])  # fmt: skip
    line = one_line_error(xnet("train", "--config", layers, "--dropout", "0.3", "--out", tmp_path / "run"))
    assert "dropout = 0.3" in line and "[[model.layers]]" in line
    line = one_line_error(xnet("train", "--config", layers, "--model", "cnn", "--out", tmp_path / "run"))
    assert "model: 'cnn' does not apply" in line


@pytest.mark.parametrize(
    "changes",
    [
        {"model": "cnn", "activation": "tanh", "dropout": 0.5, "batch_norm": True, "init": "xavier_uniform"},
        {"model": "lenet5", "activation": "sigmoid"},
        {"model": "small-cnn", "init": "kaiming_normal"},
        {"model": "cnn", "hidden": [256, 128], "activation": "relu"},  # the defaults: not given, no error
        {"optimizer": "sgd", "momentum": 0.5},
        {"optimizer": "nesterov", "momentum": 0.8},
        {"optimizer": "adamw", "bias_correction": False},
        {"early_stopping": 2, "val_split": 0.1},
    ],
)
def test_options_that_take_effect_are_accepted(changes):
    validate(RunConfig(**changes))


def test_a_saved_config_of_an_older_version_still_validates_for_loading():
    # restore() validates the config a checkpoint holds: combinations that no longer start a run still load
    old = {"model": "cnn", "hidden": [10], "optimizer": "adam", "momentum": 0.5, "early_stopping": 2, "out": "",
           "init": "normal(std=-1)"}  # fmt: skip
    with pytest.raises(ConfigError):
        validate(RunConfig(**old))
    assert validate(RunConfig(**old), training=False).momentum == 0.5


def test_every_shipped_experiment_still_validates():
    from xnet.config import config_dict_from_toml
    from xnet.study import load_study

    for path in sorted(EXPERIMENTS.glob("*.toml")):
        if "[base]" in path.read_text():
            assert load_study(path).variants, path
        else:
            validate(RunConfig(**config_dict_from_toml(path)))


# -- 6. errors that used to appear only after an epoch --------------------------------------------


def test_early_stopping_without_a_validation_split_fails_before_training(tmp_path):
    cfg = tmp_path / "es.toml"
    cfg.write_text('dataset = "sine"\nloss = "mse"\nepochs = 2\nearly_stopping = 2\n')
    out = tmp_path / "run"
    line = one_line_error(xnet("train", "--config", cfg, "-q", "--out", out))
    assert "early_stopping" in line and "val_split" in line
    assert_nothing_written(out)
    with pytest.raises(ConfigError, match="early_stopping"):  # compare validates the same way
        validate(RunConfig(early_stopping=2))


# -- 7. no empty output folders --------------------------------------------------------------------


LAYER_MISMATCH = [
    ([{"type": "dense", "in_features": 5, "out_features": 1}],
     "Dense(5, 1)): in_features = 5 was given, but its input has 1"),
    ([{"type": "dense", "in_features": 1, "out_features": 4}, {"type": "dense", "in_features": 3, "out_features": 1}],
     "Dense(3, 1)"),
]  # fmt: skip


@pytest.mark.parametrize(("layers", "message"), LAYER_MISMATCH)
def test_layer_shape_mismatch_fails_before_creating_the_folder(layers, message, tmp_path):
    cfg = layers_config(tmp_path / "net.toml", 'dataset = "sine"\nloss = "mse"\nepochs = 1\n', layers)
    out = tmp_path / "a" / "b" / "run"
    line = one_line_error(xnet("train", "--config", cfg, "-q", "--out", out))
    assert "the model does not fit the data" in line and message in line
    assert not (tmp_path / "a").exists()


def test_conv_layers_that_do_not_fit_the_images_fail_before_creating_the_folder(tmp_path):
    spec = make_idx(tmp_path / "digits", size=6)
    cfg = layers_config(tmp_path / "net.toml", f'dataset = "{spec}"\nepochs = 1\n',
                        [{"type": "conv2d", "in_channels": 3, "out_channels": 2, "kernel_size": 3}])  # fmt: skip
    out = tmp_path / "run"
    line = one_line_error(xnet("train", "--config", cfg, "-q", "--out", out))
    assert "Conv2D(in_channels=3)" in line
    assert_nothing_written(out)


def test_divergence_in_the_first_epoch_leaves_no_folder(tmp_path):
    out = tmp_path / "run"
    r = xnet("train", *SINE, "--optimizer", "sgd", "--lr", "1e6", "--out", out)
    assert "diverged" in one_line_error(r, code=3)
    assert_nothing_written(out)


# -- 8. an output folder that cannot be written ----------------------------------------------------


def test_unwritable_out_folder_fails_before_loading_data(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != ro and real_access(p, mode, **kw))
    def no_data(*args, **kwargs):
        raise AssertionError("data loaded before the output folder was checked")

    monkeypatch.setattr("xnet.data.load_dataset", no_data)
    line = one_line_error(xnet("train", *SINE, "--out", ro))
    assert f"cannot write in {ro}" in line
    line = one_line_error(xnet("train", *SINE, "--out", ro / "new" / "run"))  # nearest existing parent
    assert f"cannot write in {ro}" in line and not (ro / "new").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_read_only_out_folder_really_fails(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert "cannot write in" in one_line_error(xnet("train", *SINE, "--out", ro))
    finally:
        ro.chmod(0o700)


def test_out_that_is_a_file_says_so(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    line = one_line_error(xnet("train", *SINE, "--out", afile))
    assert f"{afile} is a file, not a folder" in line
    line = one_line_error(xnet("train", *SINE, "--out", afile / "run"))
    assert f"{afile} is a file, not a folder" in line


# -- 9. retraining into a run folder ---------------------------------------------------------------


def test_existing_run_is_refused_then_replaced_with_overwrite(tmp_path):
    out = tmp_path / "run"
    assert xnet("train", *SINE, "--out", out).code == 0
    assert (out / "prediction.png").is_file()
    before = (out / "metrics.json").read_bytes()
    (out / "notes.txt").write_text("mine")
    spec = make_idx(tmp_path / "digits", size=4)
    line = one_line_error(xnet("train", "--dataset", spec, "--hidden", "8", "--epochs", "1", "-q", "--out", out))
    assert f"--out {out} already holds a run" in line and "--overwrite" in line and "--resume" in line
    assert (out / "metrics.json").read_bytes() == before
    r = xnet("train", "--dataset", spec, "--hidden", "8", "--epochs", "1", "-q", "--overwrite", "--out", out)
    assert r.code == 0, r.err
    assert not (out / "prediction.png").exists(), "a file of the old (sine) run stayed"
    assert json.loads((out / "metrics.json").read_text())["task"] == "classification"
    assert (out / "notes.txt").read_text() == "mine", "--overwrite deleted a file xnet did not write"


def test_overwrite_keeps_the_old_run_when_the_new_one_is_rejected(tmp_path):
    out = tmp_path / "run"
    assert xnet("train", *SINE, "--out", out).code == 0
    cfg = layers_config(tmp_path / "net.toml", 'dataset = "sine"\nloss = "mse"\nepochs = 1\n',
                        [{"type": "dense", "in_features": 5, "out_features": 1}])  # fmt: skip
    assert "does not fit the data" in one_line_error(xnet("train", "--config", cfg, "-q", "--overwrite", "--out", out))
    assert (out / "metrics.json").is_file() and (out / "model.npz").is_file()


def test_overwrite_keeps_the_old_run_when_the_new_one_diverges_at_once(tmp_path):
    out = tmp_path / "run"
    assert xnet("train", *SINE, "--out", out).code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = xnet("train", *SINE, "--optimizer", "sgd", "--lr", "1e30", "--overwrite", "--out", out)
    assert r.code == 3, r.err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing set aside is left hidden either


def test_overwrite_replaces_once_the_new_run_has_written(tmp_path):
    out = tmp_path / "run"
    assert xnet("train", *SINE, "--out", out).code == 0
    assert xnet("train", *SINE, "--seed", "3", "--overwrite", "--out", out).code == 0
    assert json.loads((out / "metrics.json").read_text())["seed"] == 3
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "the set-aside files were not removed"


def test_resume_and_overwrite_together_is_an_error(tmp_path):
    out = tmp_path / "run"
    assert xnet("train", *SINE, "--out", out).code == 0
    line = one_line_error(xnet("train", "--resume", "--overwrite", "--epochs", "2", "--out", out))
    assert "--resume" in line and "--overwrite" in line


def test_run_training_keeps_its_old_behaviour_for_compare(tmp_path):
    from xnet.runs.run import run_training
    from xnet.train.progress import Reporter

    out = tmp_path / "variant"
    cfg = validate(RunConfig(dataset="sine", loss="mse", hidden=[8], epochs=1, quiet=True, out=str(out)))
    run_training(cfg, Reporter())
    # compare retrains a changed variant in place
    result = run_training(cfg.replace(seed=1), Reporter(), existing="replace")
    assert result.metrics["seed"] == 1


# -- 10. messages ----------------------------------------------------------------------------------


def test_config_that_is_not_utf8_names_the_file(tmp_path):
    cfg = tmp_path / "binary.toml"
    cfg.write_bytes(b"\xff\xfeepochs=1\n")
    line = one_line_error(xnet("train", "--config", cfg))
    assert str(cfg) in line and "not UTF-8" in line


@pytest.mark.parametrize("seed", ["-1", str(2**63)])
def test_seed_outside_the_generators_range(tmp_path, seed):
    line = one_line_error(xnet("train", *SINE, "--seed", seed, "--out", tmp_path / "run"))
    assert f"seed: must be an integer in [0, 2**63), got {seed}" in line


@pytest.mark.parametrize(("model", "least"), [("cnn", 4), ("small-cnn", 4), ("lenet5", 12)])
def test_images_too_small_for_a_cnn_preset(model, least, tmp_path):
    spec = make_idx(tmp_path / "tiny", size=3)
    out = tmp_path / "run"
    line = one_line_error(xnet("train", "--dataset", spec, "--model", model, "--epochs", "1", "-q", "--out", out))
    assert f"images are 3x3, too small for the {model} preset (it needs at least {least}x{least})" in line
    assert_nothing_written(out)


def test_empty_layer_list(tmp_path):
    cfg = tmp_path / "empty.toml"
    cfg.write_text("epochs = 1\n[model]\nlayers = []\n")
    line = one_line_error(xnet("train", "--config", cfg, "--out", tmp_path / "run"))
    assert "layer list is empty" in line and "unknown value" not in line


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("epochs = 1\nwarmup_epochs = 5\n", "a warmup of 5 epochs is not shorter than the run's 1 epoch"),
        ('epochs = 1\nwarmup_epochs = 0.6\nbatch_size = "full"\n',
         "a warmup of 1 step (0.6 epochs) is not shorter than the run's 1 step"),
        ('epochs = 4\nwarmup_epochs = 1\nschedule = "onecycle"\n', "onecycle schedule warms up by itself"),
    ],
)  # fmt: skip
def test_warmup_longer_than_the_run_in_user_terms(body, message, tmp_path):
    cfg = tmp_path / "w.toml"
    cfg.write_text('dataset = "sine"\nloss = "mse"\nhidden = [8]\n' + body)
    out = tmp_path / "run"
    line = one_line_error(xnet("train", "--config", cfg, "-q", "--out", out))
    assert message in line and "warmup_epochs" in line and "CosineSchedule" not in line
    assert_nothing_written(out)


def test_trainer_api_refuses_early_stopping_without_validation_data():
    from xnet.train import EarlyStopping

    trainer = tiny_trainer(outputs=3, early_stopping=EarlyStopping())
    with pytest.raises(ValueError, match="no validation data"):
        trainer.fit((np.ones((8, 4), np.float32), np.arange(8) % 3), epochs=1)
    assert trainer.global_step == 0


def test_bias_correction_reaches_adamw():
    from xnet.backends import get_backend
    from xnet.nn import Dense, build_on
    from xnet.runs.build import build_optimizer

    with build_on(get_backend("cpu", seed=0), "float32"):
        model = Dense(2, 2)
    opt = build_optimizer(validate(RunConfig(optimizer="adamw", bias_correction=False)), model)
    assert opt.param_groups[0]["bias_correction"] is False


def test_default_out_dirs_of_runs_in_the_same_second_differ(tmp_path, monkeypatch):
    from xnet.config import RunConfig
    from xnet.runs import folder

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(folder.time, "strftime", lambda fmt: "20260101-000000")
    first = folder.default_out_dir(RunConfig())
    first.mkdir(parents=True)
    second = folder.default_out_dir(RunConfig())
    assert second != first and second.name == first.name + "-2"
