"""The new layers from TOML: training, reloading, `xnet summary`, and their mistakes as one line, exit 2."""

from __future__ import annotations

import numpy as np
import pytest
from clirun import one_line_error, xnet

IMAGE_LAYERS = '''
[[model.layers]]
type = "conv2d"
out_channels = 4
kernel_size = 3
padding = 1
[[model.layers]]
type = "residual"
activation = {type = "elu", alpha = 0.5}
  [[model.layers.layers]]
  type = "conv2d"
  out_channels = 6
  kernel_size = 3
  stride = 2
  padding = 1
  [[model.layers.layers]]
  type = "gelu"
  approximate = "tanh"
  [[model.layers.layers]]
  type = "conv2d"
  out_channels = 6
  kernel_size = 3
  padding = "same"
  [[model.layers.shortcut]]
  type = "conv2d"
  out_channels = 6
  kernel_size = 1
  stride = 2
  [[model.layers.shortcut]]
  type = "batchnorm2d"
  num_channels = 6
[[model.layers]]
type = "adaptiveavgpool2d"
output_size = 2
[[model.layers]]
type = "flatten"
[[model.layers]]
type = "layernorm"
normalized_shape = 24
[[model.layers]]
type = "silu"
[[model.layers]]
type = "dense"
out_features = 8
[[model.layers]]
type = "softplus"
beta = 2.0
[[model.layers]]
type = "globalavgpool2d_placeholder"
'''


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A CSV of 30 labelled 28 x 28 images (10 classes)."""
    d = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    names = ["label", *(f"pixel{i}" for i in range(784))]
    rows = [",".join(map(str, [i % 10, *rng.integers(0, 256, 784).tolist()])) for i in range(30)]
    (d / "train.csv").write_text("\n".join([",".join(names), *rows]) + "\n")
    return d / "train.csv"


def _config(tmp_path, layers: str, name="net.toml"):
    path = tmp_path / name
    path.write_text("epochs = 1\nbatch_size = 10\n" + layers)
    return path


def test_every_new_layer_trains_from_toml_reloads_and_summarises(images, tmp_path):
    layers = IMAGE_LAYERS.replace('type = "globalavgpool2d_placeholder"', 'type = "dense"\nout_features = 10')
    cfg = _config(tmp_path, layers)
    out = tmp_path / "run"
    r = xnet("train", "--config", cfg, "--dataset", f"csv:{images}", "--out", out)
    assert r.code == 0, r.err
    first = [line for line in r.out.splitlines() if line.startswith("model: ")]
    assert len(first) == 1 and "parameters (" in first[0]
    n = int(first[0].split()[1].replace(",", ""))
    r = xnet("evaluate", out / "model.npz", "--split", "train")
    assert r.code == 0, r.err
    assert "accuracy" in r.out
    for target in (out, out / "model.npz", cfg):
        r = xnet("summary", target) if target != cfg else xnet("summary", _with_data(cfg, images))
        assert r.code == 0, r.err
        lines = r.out.splitlines()
        assert max(map(len, lines[1:])) <= 100  # the table; the first line names the file given
        assert any(line.startswith("  1.shortcut.1 ") and "BatchNorm2D 6" in line for line in lines)
        assert lines[-1].startswith(f"parameters: {n + 12:,} total, {n:,} trainable")  # 12: BN running stats


def _with_data(cfg, images):
    text = cfg.read_text().replace("epochs = 1\n", f'epochs = 1\ndataset = "csv:{images}"\n')
    cfg.write_text(text)
    return cfg


def test_residual_shape_mismatch_is_one_line(images, tmp_path):
    layers = IMAGE_LAYERS.split("  [[model.layers.shortcut]]")[0] + '[[model.layers]]\ntype = "flatten"\n'
    cfg = _config(tmp_path, layers)
    out = tmp_path / "run"
    line = one_line_error(xnet("train", "--config", cfg, "--dataset", f"csv:{images}", "--out", out))
    assert "layer 1 (Residual): the body gives shape (6, 14, 14) per sample but the identity shortcut" in line
    assert "gives (4, 28, 28)" in line
    assert not out.exists()


def test_a_wrong_given_size_is_one_line(images, tmp_path):
    layers = '[[model.layers]]\ntype = "flatten"\n[[model.layers]]\ntype = "dense"\n'
    layers += "in_features = 700\nout_features = 10\n"
    line = one_line_error(xnet("train", "--config", _config(tmp_path, layers), "--dataset", f"csv:{images}",
                               "--out", tmp_path / "run"))  # fmt: skip
    assert line.startswith("xnet: error: the model does not fit the data (samples of shape (1, 28, 28)): ")
    assert "layer 1 (Dense(700, 10)): in_features = 700 was given, but its input has 784" in line


def test_unknown_layer_type_is_one_line(images, tmp_path):
    line = one_line_error(xnet("train", "--config", _config(tmp_path, IMAGE_LAYERS), "--dataset", f"csv:{images}",
                               "--out", tmp_path / "run"))  # fmt: skip
    assert "unknown layer type 'globalavgpool2d_placeholder'" in line and "residual" in line


@pytest.mark.parametrize("activation", ["gelu", "silu", "elu", "softplus"])
def test_activation_flag_takes_the_new_ones(tmp_path, activation):
    out = tmp_path / "run"
    r = xnet("train", "--dataset", "sine", "--loss", "mse", "--epochs", "1", "--hidden", "8", "--activation",
             activation, "--quiet", "--out", out)  # fmt: skip
    assert r.code == 0, r.err
    r = xnet("summary", out)
    assert r.code == 0 and {"gelu": "GELU", "silu": "SiLU", "elu": "ELU", "softplus": "Softplus"}[activation] in r.out


def test_elu_takes_alpha_and_sigmoid_refuses_it(tmp_path):
    r = xnet("train", "--dataset", "sine", "--loss", "mse", "--epochs", "1", "--hidden", "8", "--activation", "elu",
             "--alpha", "0.5", "--quiet", "--out", tmp_path / "run")  # fmt: skip
    assert r.code == 0, r.err
    assert "ELU 0.5" in xnet("summary", tmp_path / "run").out
    line = one_line_error(xnet("train", "--dataset", "sine", "--activation", "silu", "--alpha", "0.5",
                               "--out", tmp_path / "run2"))  # fmt: skip
    assert "only leaky_relu and elu have an alpha" in line


def test_summary_of_a_missing_file_is_one_line(tmp_path):
    assert "no such file" in one_line_error(xnet("summary", tmp_path / "nothing.toml"))
    assert "expected a run folder holding model.npz" in one_line_error(xnet("summary", tmp_path))
