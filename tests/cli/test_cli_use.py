"""`xnet evaluate`, `predict`, `plot` and `info` on a checkpoint trained in the test."""

from __future__ import annotations

import json

import numpy as np
import pytest
from clirun import one_line_error, xnet

from xnet.data import read_idx


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_dir_module):
    out = tmp_path_factory.mktemp("run") / "mlp"
    r = xnet("train", "--limit", "3000", "--epochs", "2", "--batch-size", "32", "--hidden", "64", "--quiet",
             "--out", out)  # fmt: skip
    assert r.code == 0, r.err
    return out


@pytest.fixture(scope="module")
def mnist_dir_module():
    import os
    from pathlib import Path

    root = os.environ.get("XNET_DATA_DIR")
    if not root or not (Path(root) / "mnist").is_dir():
        pytest.skip("real MNIST not found: set XNET_DATA_DIR to a folder holding mnist/")
    return Path(root) / "mnist"


def test_evaluate_table_and_json(trained):
    r = xnet("evaluate", trained / "model.npz")
    assert r.code == 0, r.err
    assert "accuracy" in r.out and "confusion matrix" in r.out and "precision" in r.out
    r = xnet("evaluate", trained / "model.npz", "--json")
    data = json.loads(r.out)
    cm = np.array(data["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 10000
    assert data["accuracy"] == pytest.approx(np.trace(cm) / 10000)
    assert data["accuracy"] > 0.8
    one = data["per_class"][3]
    assert one["recall"] == pytest.approx(cm[3, 3] / cm[3].sum())
    assert one["precision"] == pytest.approx(cm[3, 3] / cm[:, 3].sum())


def test_predict_png_drawn_by_the_test(trained, tmp_path, mnist_dir_module):
    from PIL import Image

    images = read_idx(mnist_dir_module / "t10k-images-idx3-ubyte.gz")[:20]
    labels = read_idx(mnist_dir_module / "t10k-labels-idx1-ubyte.gz")[:20]
    paths = []
    for i, img in enumerate(images):
        # a dark digit on white paper, four times MNIST's size: needs --invert and rescaling
        big = Image.fromarray(255 - img).resize((112, 112), Image.Resampling.NEAREST)
        path = tmp_path / f"digit{i}.png"
        big.save(path)
        paths.append(path)
    r = xnet("predict", trained / "model.npz", *paths, "--invert")
    assert r.code == 0, r.err
    predicted = [int(line.split(": ")[1].split()[0]) for line in r.out.strip().splitlines()]
    assert len(predicted) == 20
    assert np.mean(np.array(predicted) == labels) >= 0.8


def test_predict_npy_and_kaggle_csv(trained, tmp_path, mnist_dir_module):
    images = read_idx(mnist_dir_module / "t10k-images-idx3-ubyte.gz")[:50]
    labels = read_idx(mnist_dir_module / "t10k-labels-idx1-ubyte.gz")[:50]
    np.save(tmp_path / "batch.npy", images)
    r = xnet("predict", trained / "model.npz", tmp_path / "batch.npy")
    assert r.code == 0, r.err
    from_npy = [int(line.split(": ")[1].split()[0]) for line in r.out.strip().splitlines()]
    csv = tmp_path / "test.csv"
    rows = [",".join(f"pixel{i}" for i in range(784))] + [",".join(map(str, im.reshape(-1))) for im in images]
    csv.write_text("\n".join(rows) + "\n")
    sub = tmp_path / "submission.csv"
    r = xnet("predict", trained / "model.npz", "--csv", csv, "--out", sub)
    assert r.code == 0, r.err
    lines = sub.read_text().splitlines()
    assert lines[0] == "ImageId,Label" and len(lines) == 51
    assert [int(x.split(",")[0]) for x in lines[1:]] == list(range(1, 51))
    from_csv = [int(x.split(",")[1]) for x in lines[1:]]
    assert from_csv == from_npy
    assert np.mean(np.array(from_csv) == labels) >= 0.85


def test_predict_unreadable_image(trained, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    assert "cannot read image" in one_line_error(xnet("predict", trained / "model.npz", bad))


def test_predict_and_evaluate_missing_checkpoint(tmp_path):
    assert "no checkpoint" in one_line_error(xnet("evaluate", tmp_path / "none.npz"))
    assert "no checkpoint" in one_line_error(xnet("predict", tmp_path / "none.npz", tmp_path / "x.png"))


def test_plot_overlays_runs(trained, tmp_path):
    png = tmp_path / "both.png"
    r = xnet("plot", trained, trained, "-o", png)
    assert r.code == 0, r.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "not a run folder" in one_line_error(xnet("plot", tmp_path, "-o", png))


def test_info_lists_backends():
    r = xnet("info")
    assert r.code == 0
    assert "numpy" in r.out and "cpu     available" in r.out and "strict  available" in r.out
    assert "cuda" in r.out
