"""`xnet evaluate` on the run's own splits, CSV files with a byte-order mark, and `predict --csv` with other inputs."""

from __future__ import annotations

import codecs
import json

import numpy as np
import pytest
from clirun import one_line_error, xnet
from digitsets import write_digit_set

from xnet.data.csv import read_csv
from xnet.errors import DataError

PIXELS = 784


def pixel_rows(n, seed=0):
    """n rows of (label, 784 pixels); the label is visible in the pixels so a model can learn something."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        pixels = rng.integers(0, 64, PIXELS)
        pixels[(i % 10) * 78 : (i % 10 + 1) * 78] = 255
        rows.append([i % 10, *pixels.tolist()])
    return rows


def csv_text(rows, labelled=True, header=True, newline="\n"):
    """A digits CSV's text: `rows` are (label, pixels...) lists."""
    names = (["label"] if labelled else []) + [f"pixel{i}" for i in range(PIXELS)]
    lines = ([",".join(names)] if header else []) + [",".join(map(str, r if labelled else r[1:])) for r in rows]
    return newline.join(lines) + newline


def write_bom(path, text):
    """The file as Excel's "CSV UTF-8" saves it: a UTF-8 byte-order mark first."""
    path.write_bytes(codecs.BOM_UTF8 + text.encode())
    return path


# -- 1. evaluate rebuilds the run's splits: --limit, --val-split and seed ---------------------------


@pytest.fixture(scope="module")
def limited_run(tmp_path_factory):
    """An idx:DIR dataset of 120 training and 30 test images, and a run on its first 60 with a 25% val split."""
    d = tmp_path_factory.mktemp("limited")
    data = write_digit_set(d / "data", 120, 30, gz=False, seed=1)
    out = d / "run"
    r = xnet("train", "--dataset", f"idx:{data}", "--limit", "60", "--val-split", "0.25", "--epochs", "1",
             "--hidden", "8", "--quiet", "--out", out)  # fmt: skip
    assert r.code == 0, r.err
    return out, data


def test_evaluate_val_reproduces_the_runs_metrics(limited_run):
    out, _ = limited_run
    metrics = json.loads((out / "metrics.json").read_text())
    r = xnet("evaluate", out / "model.npz", "--split", "val", "--json")
    assert r.code == 0, r.err
    got = json.loads(r.out)
    assert got["samples"] == 15 and got["limit"] == 60
    assert got["accuracy"] == pytest.approx(metrics["val_accuracy"])
    assert got["loss"] == pytest.approx(metrics["val_loss"], rel=1e-5)


def test_evaluate_test_uses_the_whole_test_set(limited_run):
    # the run tested on the first 60 // 6 = 10 test images; nothing was trained on the test set
    out, _ = limited_run
    r = xnet("evaluate", out / "model.npz", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["samples"] == 30
    r = xnet("evaluate", out / "model.npz")
    assert "test split (30 samples; the whole test set: the run's --limit 60 tested on the first 10)" in r.out


def test_evaluate_header_names_the_runs_limit(limited_run):
    out, _ = limited_run
    r = xnet("evaluate", out / "model.npz", "--split", "val")
    assert r.code == 0, r.err
    assert "val split (15 samples, the run's --limit 60)" in r.out.splitlines()[0]
    r = xnet("evaluate", out / "model.npz", "--split", "train")
    assert r.code == 0, r.err
    assert "train split (45 samples, the run's --limit 60)" in r.out.splitlines()[0]  # the val samples held out


def test_evaluate_with_dataset_uses_the_whole_dataset(limited_run):
    out, data = limited_run
    r = xnet("evaluate", out / "model.npz", "--dataset", f"idx:{data}")
    assert r.code == 0, r.err
    assert "test split (30 samples; the whole dataset, not the run's --limit 60)" in r.out.splitlines()[0]


# -- 2. a CSV saved with a UTF-8 byte-order mark ----------------------------------------------------


def test_bom_labelled_csv_keeps_its_labels(tmp_path):
    rows = pixel_rows(6)
    for name, text in (("lf", csv_text(rows)), ("crlf", csv_text(rows, newline="\r\n"))):
        x, y = read_csv(write_bom(tmp_path / f"{name}.csv", text))
        assert y is not None and y.tolist() == [r[0] for r in rows], name
        assert x.shape == (6, PIXELS) and x[0].tolist() == rows[0][1:]


def test_bom_headerless_csv_and_bad_line_number(tmp_path):
    rows = pixel_rows(3)
    x, y = read_csv(write_bom(tmp_path / "plain.csv", csv_text(rows, header=False)))
    assert y.tolist() == [0, 1, 2] and x.shape == (3, PIXELS)
    rows[0][1] = 300  # the first line, right after the mark, is named and its label read as a number
    bad = write_bom(tmp_path / "bad.csv", csv_text(rows, header=False))
    with pytest.raises(DataError, match=r"bad.csv: line 1: pixel 0 is 300, outside 0..255"):
        read_csv(bad)


def test_train_and_predict_on_bom_csv(tmp_path):
    rows = pixel_rows(20)
    data = write_bom(tmp_path / "bom.csv", csv_text(rows, newline="\r\n"))
    r = xnet("train", "--dataset", f"csv:{data}", "--epochs", "1", "--hidden", "8", "--quiet", "--out", tmp_path / "x")
    assert r.code == 0, r.err
    model = tmp_path / "x" / "model.npz"
    # a labelled file (Kaggle's train.csv re-saved by Excel) predicts without its label column
    sub = tmp_path / "sub.csv"
    r = xnet("predict", model, "--csv", data, "--out", sub)
    assert r.code == 0, r.err
    plain = tmp_path / "plain.csv"
    plain.write_text(csv_text(rows))
    r = xnet("predict", model, "--csv", plain, "--out", tmp_path / "sub_plain.csv")
    assert r.code == 0, r.err
    assert sub.read_text() == (tmp_path / "sub_plain.csv").read_text()
    assert len(sub.read_text().splitlines()) == 21


# -- 3. predict --csv --out with image or array inputs: refused -------------------------------------


def test_predict_csv_with_other_inputs_is_refused(tmp_path):
    data = tmp_path / "train.csv"
    data.write_text(csv_text(pixel_rows(10)))
    r = xnet("train", "--dataset", f"csv:{data}", "--epochs", "1", "--hidden", "8", "--quiet", "--out", tmp_path / "x")
    assert r.code == 0, r.err
    test = tmp_path / "test.csv"
    test.write_text(csv_text(pixel_rows(4), labelled=False))
    np.save(tmp_path / "digit.npy", np.zeros((28, 28), np.uint8))
    out = tmp_path / "o.csv"
    r = xnet("predict", tmp_path / "x" / "model.npz", "--csv", test, tmp_path / "digit.npy", "--out", out)
    line = one_line_error(r)
    assert "--out with --csv writes the CSV's predictions in Kaggle format" in line
    assert "predict the images in a separate call" in line
    assert r.out == "" and not out.exists()
