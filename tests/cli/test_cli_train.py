"""`xnet train` through its real entry point: outputs, config files, resume, errors, regression."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tomllib

import numpy as np
import pytest
from clirun import one_line_error, xnet, xnet_process

QUICK = ("--limit", "1200", "--epochs", "1", "--hidden", "32", "--batch-size", "32", "--schedule", "constant", "-q")


@pytest.fixture
def quick_run(mnist_dir, tmp_path):
    out = tmp_path / "run"
    r = xnet("train", *QUICK, "--val-split", "0.1", "--out", out)
    assert r.code == 0, r.err
    return out, r


def test_short_mnist_run_writes_every_output(quick_run):
    out, r = quick_run
    for name in ("metrics.json", "history.csv", "model.npz", "config.toml", "curves.png"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "train_accuracy", "train_loss", "val_accuracy", "epochs",
                "train_seconds", "backend", "device", "dtype", "seed", "num_parameters", "config"):  # fmt: skip
        assert key in m, key
    assert m["backend"] == "numpy" and m["device"] == "cpu" and m["dtype"] == "float32"
    assert m["num_parameters"] == 784 * 32 + 32 + 32 * 10 + 10
    assert 0.5 < m["test_accuracy"] <= 1 and m["val_accuracy"] is not None
    assert len(m["epochs"]) == 1 and m["epochs"][0]["epoch"] == 1
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert header[:7] == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
                          "test_accuracy"]  # fmt: skip
    assert "test accuracy" in r.out and str(out) in r.out
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_saved_config_repeats_the_run_exactly(quick_run, tmp_path):
    out, _ = quick_run
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["hidden"] == [32] and cfg["limit"] == 1200 and "out" not in cfg
    again = tmp_path / "again"
    assert xnet("train", "--config", out / "config.toml", "--quiet", "--out", again).code == 0
    a = json.loads((out / "metrics.json").read_text())
    b = json.loads((again / "metrics.json").read_text())
    assert a["test_loss"] == b["test_loss"] and a["train_loss"] == b["train_loss"]


def test_config_file_with_flag_override(mnist_dir, tmp_path):
    cfg = tmp_path / "exp.toml"
    cfg.write_text('hidden = [16]\nepochs = 3\nlimit = 600\noptimizer = "sgd"\nlr = 0.1\n')
    out = tmp_path / "run"
    r = xnet("train", "--config", cfg, "--epochs", "1", "--quiet", "--out", out)
    assert r.code == 0, r.err
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs_completed"] == 1
    assert m["config"]["hidden"] == [16] and m["config"]["optimizer"] == "sgd" and m["config"]["lr"] == 0.1


def test_custom_layers_from_config(mnist_dir, tmp_path):
    cfg = tmp_path / "net.toml"
    cfg.write_text(
        'epochs = 1\nlimit = 600\n'
        '[[model.layers]]\ntype = "conv2d"\nin_channels = 1\nout_channels = 4\nkernel_size = 3\npadding = "same"\n'
        '[[model.layers]]\ntype = "relu"\n[[model.layers]]\ntype = "maxpool2d"\nkernel_size = 2\n'
        '[[model.layers]]\ntype = "flatten"\n'
        '[[model.layers]]\ntype = "dense"\nin_features = 784\nout_features = 10\n'
    )
    out = tmp_path / "run"
    r = xnet("train", "--config", cfg, "--quiet", "--out", out)
    assert r.code == 0, r.err
    assert json.loads((out / "metrics.json").read_text())["num_parameters"] == 4 * 9 + 4 + 7850
    assert "[[model.layers]]" in (out / "config.toml").read_text()


def test_extending_a_run_with_resume_equals_a_longer_run(mnist_dir, tmp_path):
    # with a constant lr the schedule does not depend on --epochs, so 1 + 1 epochs == 2 epochs
    args = ("--limit", "1000", "--hidden", "24", "--dropout", "0.2", "--schedule", "constant", "--quiet")
    assert xnet("train", *args, "--epochs", "2", "--out", tmp_path / "full").code == 0
    assert xnet("train", *args, "--epochs", "1", "--out", tmp_path / "part").code == 0
    r = xnet("train", "--resume", "--epochs", "2", "--quiet", "--out", tmp_path / "part")
    assert r.code == 0, r.err
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((tmp_path / "part" / "metrics.json").read_text())
    assert b["epochs_completed"] == 2
    assert a["test_loss"] == b["test_loss"] and a["test_accuracy"] == b["test_accuracy"]


def test_ctrl_c_saves_a_checkpoint_and_resume_equals_uninterrupted(mnist_dir, tmp_path):
    args = ["--limit", "6000", "--hidden", "32", "--dropout", "0.1", "--batch-size", "16", "--epochs", "3"]
    assert xnet("train", *args, "--quiet", "--out", tmp_path / "full").code == 0
    out = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "xnet", "train", *args, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    for line in proc.stdout:
        if line.startswith("epoch"):  # first epoch done: interrupt during the second
            proc.send_signal(signal.SIGINT)
            break
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert f"xnet train --resume --out {out}" in stdout and "Traceback" not in stderr
    r = xnet("train", "--resume", "--quiet", "--out", out)
    assert r.code == 0, r.err
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    assert b["epochs_completed"] == 3
    assert a["test_loss"] == b["test_loss"] and a["test_accuracy"] == b["test_accuracy"]


def test_divergence_exit_code_3(tmp_path):
    r = xnet("train", "--dataset", "sine", "--loss", "mse", "--optimizer", "sgd", "--lr", "1e6", "--epochs", "2",
             "--quiet", "--out", tmp_path / "run")  # fmt: skip
    line = one_line_error(r, code=3)
    assert "diverged" in line and "epoch 1" in line and "lower learning rate" in line


def test_sine_regression_end_to_end(tmp_path):
    out = tmp_path / "sine"
    r = xnet("train", "--dataset", "sine", "--loss", "mse", "--model", "mlp", "--hidden", "16,16,16,16",
             "--epochs", "30", "--batch-size", "32", "--lr", "0.01", "--quiet", "--out", out)  # fmt: skip
    assert r.code == 0, r.err
    assert "test MSE" in r.out
    m = json.loads((out / "metrics.json").read_text())
    assert m["task"] == "regression" and m["test_accuracy"] is None
    assert m["test_loss"] < m["epochs"][0]["test_loss"]  # it learned something
    assert (out / "prediction.png").is_file()


BAD = [
    (("--optimizer", "adamm"), "optimizer: unknown value 'adamm' (valid: sgd, momentum"),
    (("--activation", "relux"), "valid: relu, leaky_relu, sigmoid, tanh"),
    (("--schedule", "linear"), "valid: constant, step"),
    (("--model", "resnet"), "model: unknown value 'resnet'"),
    (("--epochs", "0"), "epochs: expected a positive integer"),
    (("--epochs", "-3"), "epochs"),
    (("--batch-size", "-1"), "batch_size"),
    (("--batch-size", "lots"), "batch_size"),
    (("--lr", "0"), "lr: expected a positive number"),
    (("--dropout", "1.5"), "dropout: expected a probability"),
    (("--hidden", "12,abc"), "hidden: expected sizes like 256,128"),
    (("--init", "orthogonal"), "orthogonal"),
    (("--epochs", "many"), "epochs"),
    (("--dataset", "idx:/nonexistent/folder"), "/nonexistent/folder"),
    (("--dataset", "imagenet"), "imagenet"),
    (("--device", "tpu"), "unknown device 'tpu'"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2(args, message, tmp_path):
    out = tmp_path / "run"
    r = xnet("train", "--dataset", "sine", "--epochs", "1", "--quiet", "--out", out, *args)
    assert message in one_line_error(r)
    assert not (out / "metrics.json").exists()


def test_config_unknown_key_names_key_and_line(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('epochs = 1\n# a comment\nlerning_rate = 0.1\n')
    line = one_line_error(xnet("train", "--config", cfg))
    assert "line 3" in line and "lerning_rate" in line


def test_regression_data_with_a_classification_loss(tmp_path):
    line = one_line_error(xnet("train", "--dataset", "sine", "--out", tmp_path / "r"))
    assert "regression" in line and "--loss mse" in line


def test_config_wrong_type_names_key_and_line(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('epochs = "ten"\n')
    line = one_line_error(xnet("train", "--config", cfg))
    assert "line 1" in line and "epochs" in line and "wrong type" in line


def test_config_unknown_layer_type_names_the_table(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('dataset = "sine"\n[[model.layers]]\ntype = "dense"\nin_features = 1\nout_features = 1\n'
                   '[[model.layers]]\ntype = "quantum"\n')  # fmt: skip
    line = one_line_error(xnet("train", "--config", cfg, "--out", tmp_path / "r"))
    assert "model.layers[1]" in line and "quantum" in line


def test_corrupt_dataset_is_one_line(tmp_path):
    bad = tmp_path / "digits"
    bad.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):  # fmt: skip
        (bad / name).write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05garbage")
    line = one_line_error(xnet("train", "--dataset", f"idx:{bad}", "--out", tmp_path / "r"))
    assert "train-images-idx3-ubyte" in line


def test_cuda_without_cupy(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "cupy", None)
    line = one_line_error(xnet("train", "--dataset", "sine", "--device", "cuda", "--out", tmp_path / "r"))
    assert "CuPy is not installed" in line and 'pip install "xnet[cuda12]"' in line


def test_resume_without_checkpoint(tmp_path):
    line = one_line_error(xnet("train", "--resume", "--out", tmp_path / "nothing"))
    assert "no checkpoint" in line


def test_resume_with_another_model_lists_shapes(tmp_path):
    out = tmp_path / "run"
    r = xnet("train", "--dataset", "sine", "--loss", "mse", "--hidden", "8", "--epochs", "1", "--quiet", "--out", out)
    assert r.code == 0, r.err
    line = one_line_error(xnet("train", "--resume", "--hidden", "9", "--epochs", "2", "--out", out))
    assert "another model" in line and "(1, 8)" in line and "(1, 9)" in line


def test_help_is_complete():
    r = xnet("--help")
    assert r.code == 0
    for command in ("train", "evaluate", "predict", "plot", "compare", "info"):
        assert command in r.out
    r = xnet("train", "--help")
    for option in ("--model", "--hidden", "--activation", "--init", "--loss", "--optimizer", "--lr", "--momentum",
                   "--l1", "--l2", "--dropout", "--batch-norm", "--schedule", "--epochs", "--batch-size",
                   "--val-split", "--normalize", "--augment", "--dataset", "--data-dir", "--device", "--dtype",
                   "--seed", "--config", "--out", "--resume", "--quiet"):  # fmt: skip
        assert option in r.out, option


def test_console_entry_point_runs_as_a_process():
    r = xnet_process("info")
    assert r.code == 0 and "numpy" in r.out and "strict" in r.out
    r = xnet_process("train", "--epochs", "0")
    assert r.code == 2 and r.err.count("\n") == 1


@pytest.mark.slow
def test_default_training_reaches_975(mnist_dir, tmp_path):
    r = xnet_process("train", "--out", tmp_path / "default", timeout=600)
    assert r.code == 0, r.err
    m = json.loads((tmp_path / "default" / "metrics.json").read_text())
    assert "mnist from" in r.out
    assert m["test_accuracy"] >= 0.975, m["test_accuracy"]
    assert np.isfinite(m["train_seconds"])


TOML_MODEL = """
limit = 600
batch_size = 100
schedule = "constant"
[[model.layers]]
type = "conv2d"
out_channels = 4
kernel_size = 3
stride = 2
[[model.layers]]
type = "residual"
activation = "relu"
  [[model.layers.layers]]
  type = "conv2d"
  out_channels = 4
  kernel_size = 3
  padding = "same"
[[model.layers]]
type = "globalavgpool2d"
[[model.layers]]
type = "dense"
out_features = 10
"""


def test_a_toml_model_with_nested_layers_resumes_as_a_longer_run(mnist_dir, tmp_path):
    # the saved config holds the layers as nested tables, which must come back as plain data
    config = tmp_path / "model.toml"
    config.write_text(TOML_MODEL)
    for out, epochs in (("full", "2"), ("part", "1")):
        r = xnet("train", "--config", config, "--epochs", epochs, "--quiet", "--out", tmp_path / out)
        assert r.code == 0, r.err
    r = xnet("train", "--resume", "--epochs", "2", "--quiet", "--out", tmp_path / "part")
    assert r.code == 0, r.err
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())
    b = json.loads((tmp_path / "part" / "metrics.json").read_text())
    assert b["epochs_completed"] == 2 and a["test_loss"] == b["test_loss"]
