"""Bad input to checkpoints, `xnet evaluate` and `xnet predict`: one clear line, never a traceback."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from clirun import one_line_error, xnet

from xnet.train.checkpoint import load_checkpoint, save_checkpoint

PIXELS = 784  # 28 x 28 images, as MNIST


def write_csv(path, rows, labelled=True, header=True):
    """A digits CSV: `rows` are (label, pixels...) or (pixels...) lists."""
    k = len(rows[0]) - labelled
    names = (["label"] if labelled else []) + [f"pixel{i}" for i in range(k)]
    lines = ([",".join(names)] if header else []) + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def random_rows(n, labels, seed=0):
    rng = np.random.default_rng(seed)
    return [[labels[i % len(labels)], *rng.integers(0, 256, PIXELS).tolist()] for i in range(n)]


@pytest.fixture(scope="module")
def clf(tmp_path_factory):
    """A 10-class classifier of 28 x 28 images, trained for one epoch on 30 random CSV rows."""
    d = tmp_path_factory.mktemp("clf")
    data = write_csv(d / "train.csv", random_rows(30, list(range(10))))
    r = xnet("train", "--dataset", f"csv:{data}", "--epochs", "1", "--hidden", "8", "--quiet", "--out", d / "run")
    assert r.code == 0, r.err
    return d / "run" / "model.npz"


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    """A sine regression model (one input, one output), trained for one epoch."""
    d = tmp_path_factory.mktemp("reg")
    r = xnet("train", "--dataset", "sine", "--loss", "mse", "--epochs", "1", "--hidden", "8", "--quiet",
             "--out", d / "run")  # fmt: skip
    assert r.code == 0, r.err
    return d / "run" / "model.npz"


def rewrite(src, dst, edit_header=None, drop=()):
    """Copy checkpoint `src` to `dst`, changing its JSON header and dropping arrays."""
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files if k not in drop}
    header = json.loads(str(arrays.pop("__header__")))
    header = edit_header(header) if edit_header else header
    np.savez(dst, __header__=np.array(json.dumps(header)), **arrays)
    return dst


def _pop(key):
    def edit(h):
        del h["state"][key]
        return h

    return edit


def _edit(table, key, value):
    def edit(h):
        h["state"][table][key] = value
        return h

    return edit


def _extra_config_key(h):
    h["state"]["config"]["foo"] = 1
    return h


def _wrong_input_shape(h):
    h["state"]["dataset"]["input_shape"] = [5]
    return h


# -- 1. malformed checkpoints ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "edit, drop, expected",
    [
        (lambda h: {"format": h["format"]}, (), "no 'state'"),
        (lambda h: {**h, "state": {}}, (), "no 'config'"),
        (_pop("config"), (), "no 'config'"),
        (_pop("dataset"), (), "no 'dataset'"),
        (None, ("s/trainer/model/1.weight",), "array 's/trainer/model/1.weight'"),
        (_extra_config_key, (), "unknown config key(s) 'foo'"),
        (_wrong_input_shape, (), "recorded input shape (5,)"),
        (_edit("config", "dropout", "x"), (), "config dropout = 'x' has the wrong type (expected float)"),
        (_edit("dataset", "normalization", {"mode": "unit", "offset": 0, "scale": 0}), (), "scale non-zero"),
        (lambda h: {**h, "state": {**h["state"], "trainer": [1]}}, (), "trainer state holds no model weights"),
    ],
    ids=["nostate", "emptystate", "noconfig", "nodataset", "missingarr", "extrakey", "badshape", "wrongtype",
         "zeroscale", "trainerlist"],
)
def test_malformed_checkpoint_is_one_line_naming_the_file(clf, tmp_path, edit, drop, expected):
    bad = rewrite(clf, tmp_path / "bad.npz", edit, drop)
    for args in (("evaluate", bad), ("predict", bad, tmp_path / "x.npy")):
        line = one_line_error(xnet(*args))
        assert f"{bad}: not a usable xnet checkpoint" in line
        assert expected in line and "incompatible version" in line


def test_nan_weights_are_refused_at_load(clf, tmp_path):
    with np.load(clf) as z:
        arrays = {k: z[k] for k in z.files}
    name = next(k for k in arrays if k.endswith(".weight"))
    arrays[name] = np.full_like(arrays[name], np.nan)
    np.savez(tmp_path / "nan.npz", **arrays)
    line = one_line_error(xnet("evaluate", tmp_path / "nan.npz"))
    assert "not a usable xnet checkpoint (its weights hold NaN or infinite values" in line


def test_missing_key_is_a_checkpoint_error_and_still_a_key_error(tmp_path):
    from xnet.train.checkpoint import CheckpointError

    save_checkpoint(tmp_path / "c.npz", {"a": {"b": np.zeros(2)}})
    state = load_checkpoint(tmp_path / "c.npz")
    with pytest.raises(CheckpointError, match=r"c\.npz: not a usable xnet checkpoint \(no 'a/c'"):
        state["a"]["c"]
    with pytest.raises(KeyError):
        state["x"]
    assert state.get("x") is None and state == {"a": {"b": state["a"]["b"]}}


# -- 2. files that are not checkpoints or arrays --------------------------------------------------


def test_non_checkpoint_files(clf, tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("hello world\n")
    npy = tmp_path / "npy.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    listheader = tmp_path / "list.npz"
    np.savez(listheader, __header__=np.array("[1, 2]"))
    for path, expected in [(text, "not an .npz archive"), (npy, "a single NumPy .npy array"),
                           (listheader, "its header is a JSON list")]:  # fmt: skip
        line = one_line_error(xnet("evaluate", path))
        assert f"{path}: not an xnet checkpoint ({expected}" in line
        assert "pickle" not in line
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.npz").write_text("hello world\n")
    line = one_line_error(xnet("train", "--resume", "--out", run, "--dataset", "sine", "--loss", "mse"))
    assert "model.npz: not an xnet checkpoint" in line and "pickle" not in line


def test_predict_non_npy_inputs(clf, tmp_path):
    text = tmp_path / "text.npy"
    text.write_text("hello world\n")
    line = one_line_error(xnet("predict", clf, text))
    assert f"{text}: not a NumPy array file" in line and "pickle" not in line
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    line = one_line_error(xnet("predict", clf, obj))
    assert f"{obj}: cannot read the array (it holds Python objects" in line and "pickle" not in line


# -- 3, 7, 8. --out ---------------------------------------------------------------------------------


def test_regression_csv_predictions_are_written(reg, tmp_path):
    data = tmp_path / "x.csv"
    data.write_text("x\n0\n1\n3\n")
    sub = tmp_path / "sub.csv"
    r = xnet("predict", reg, "--csv", data, "--out", sub)
    assert r.code == 0, r.err
    lines = sub.read_text().splitlines()
    assert lines[0] == "ImageId,Value" and [x.split(",")[0] for x in lines[1:]] == ["1", "2", "3"]
    values = [float(x.split(",")[1]) for x in lines[1:]]
    assert np.isfinite(values).all() and len(set(values)) == 3


def test_out_that_is_the_input_is_refused(clf, tmp_path):
    data = write_csv(tmp_path / "test.csv", [row[1:] for row in random_rows(3, [0])], labelled=False)
    before = data.read_bytes()
    (tmp_path / "sub").mkdir()
    for out in (data, tmp_path / "sub" / ".." / "test.csv"):
        line = one_line_error(xnet("predict", clf, "--csv", data, "--out", out))
        assert "--out" in line and "is the --csv input" in line
    assert data.read_bytes() == before
    line = one_line_error(xnet("predict", clf, "--csv", data, "--out", clf))
    assert "is the checkpoint" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub", "test.csv"]


def test_out_with_images_writes_the_table(clf, tmp_path):
    from PIL import Image

    img = np.zeros((40, 40), np.uint8)
    img[10:30, 18:22] = 255
    png = tmp_path / "one,digit.png"  # a comma in the name: the table must quote it
    Image.fromarray(img).save(png)
    np.save(tmp_path / "two.npy", np.zeros((2, 28, 28), np.uint8))
    out = tmp_path / "pred.csv"
    r = xnet("predict", clf, png, tmp_path / "two.npy", "--out", out)
    assert r.code == 0, r.err
    import csv

    rows = list(csv.reader(out.open()))
    assert rows[0] == ["Input", "Label", "Probability"]
    assert [row[0] for row in rows[1:]] == [str(png), f"{tmp_path / 'two.npy'}[0]", f"{tmp_path / 'two.npy'}[1]"]
    assert all(0 <= int(row[1]) < 10 and 0 < float(row[2]) <= 1 for row in rows[1:])


# -- 4, 9. evaluate: data that does not fit the model ----------------------------------------------


def test_evaluate_labels_outside_the_models_classes(clf, tmp_path):
    data = write_csv(tmp_path / "lab12.csv", random_rows(4, [3, 12]))
    line = one_line_error(xnet("evaluate", clf, "--dataset", f"csv:{data}", "--split", "train"))
    assert "labels 3..12, outside the model's classes 0..9" in line


def test_evaluate_with_fewer_labels_keeps_the_models_classes(clf, tmp_path):
    data = write_csv(tmp_path / "two.csv", random_rows(4, [0, 1]))
    r = xnet("evaluate", clf, "--dataset", f"csv:{data}", "--split", "train", "--json")
    assert r.code == 0, r.err
    assert np.array(json.loads(r.out)["confusion_matrix"]).shape == (10, 10)


def test_evaluate_task_mismatch_names_model_and_dataset(clf, reg):
    line = one_line_error(xnet("evaluate", clf, "--dataset", "sine"))
    assert f"model {clf} is a 10-class classifier; dataset 'sine' is a regression task" in line
    assert "--loss" not in line


def test_evaluate_unlabelled_csv_and_missing_split(clf, tmp_path):
    data = write_csv(tmp_path / "test.csv", [row[1:] for row in random_rows(3, [0])], labelled=False)
    line = one_line_error(xnet("evaluate", clf, "--dataset", f"csv:{data}", "--split", "train"))
    assert "has no labels" in line and "'label' first column" in line
    line = one_line_error(xnet("evaluate", clf, "--dataset", f"csv:{data}"))
    assert "has no test split; use --split train" in line


def test_evaluate_other_input_size(clf, tmp_path):
    data = write_csv(tmp_path / "small.csv", [[1, 2, 3, 4], [0, 5, 6, 7]])
    line = one_line_error(xnet("evaluate", clf, "--dataset", f"csv:{data}", "--split", "train"))
    assert "taking inputs of shape (1, 28, 28)" in line and "has (3,)" in line


# -- 5, 6. predict: shapes and values --------------------------------------------------------------


@pytest.mark.parametrize("shape, n", [((28, 28), 1), ((3, 28, 28), 3), ((2, 1, 28, 28), 2), ((784,), 1),
                                      ((2, 784), 2)])  # fmt: skip
def test_predict_accepts_image_shapes(clf, tmp_path, shape, n):
    np.save(tmp_path / "a.npy", np.zeros(shape, np.uint8))
    r = xnet("predict", clf, tmp_path / "a.npy")
    assert r.code == 0, r.err
    assert len(r.out.strip().splitlines()) == n


@pytest.mark.parametrize("shape", [(56, 56), (28, 28, 3), (785,), (0, 784), ()])
def test_predict_refuses_other_shapes(clf, tmp_path, shape):
    np.save(tmp_path / "a.npy", np.zeros(shape, np.uint8))
    line = one_line_error(xnet("predict", clf, tmp_path / "a.npy"))
    assert f"a.npy: images of shape {shape}" in line
    assert "no samples" in line if 0 in shape else "expected (1, 28, 28), (28, 28) or (784,)" in line


def test_predict_regression_shapes_and_unscaled_values(reg, tmp_path):
    np.save(tmp_path / "img.npy", np.zeros((28, 28), np.uint8))
    line = one_line_error(xnet("predict", reg, tmp_path / "img.npy"))
    assert "inputs of shape (28, 28) do not divide into samples of shape (1,)" in line
    np.save(tmp_path / "xs.npy", np.array([0.5, 127.5]))
    r = xnet("predict", reg, tmp_path / "xs.npy")
    assert r.code == 0, r.err
    printed = [float(line.split(": ")[1]) for line in r.out.strip().splitlines()]
    from xnet.runs.restore import restore

    m = restore(reg)
    expected = m.model.forward(m.backend.asarray(np.array([[0.5], [127.5]]), "float32"))
    np.testing.assert_allclose(printed, m.backend.to_numpy(expected)[:, 0], rtol=1e-4)  # 0.5 is not taken as a pixel


@pytest.mark.parametrize(
    "value, expected",
    [(-500.0, "values -500..-500, outside the range 0..255"), (1e6, "values 1e+06..1e+06, outside the range 0..255"),
     (np.nan, "NaN or infinite"), (np.inf, "NaN or infinite")],
)  # fmt: skip
def test_predict_refuses_values_outside_the_pixel_range(clf, tmp_path, value, expected):
    import warnings

    np.save(tmp_path / "v.npy", np.full((28, 28), value))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from a NaN softmax either
        line = one_line_error(xnet("predict", clf, tmp_path / "v.npy"))
    assert f"v.npy: images hold {expected}" in line


def test_predict_unit_floats_are_pixels(clf, tmp_path):
    img = np.random.default_rng(1).integers(0, 256, (28, 28))
    np.save(tmp_path / "u8.npy", img.astype(np.uint8))
    np.save(tmp_path / "unit.npy", img / 255.0)
    r = xnet("predict", clf, tmp_path / "u8.npy", tmp_path / "unit.npy")
    assert r.code == 0, r.err
    a, b = (line.split(": ")[1] for line in r.out.strip().splitlines())
    assert a == b


# -- 9. clearer messages -------------------------------------------------------------------------------


def test_predict_image_with_a_regression_model(reg, tmp_path):
    from PIL import Image

    Image.fromarray(np.full((20, 7), 255, np.uint8)).save(tmp_path / "d.png")
    line = one_line_error(xnet("predict", reg, tmp_path / "d.png"))
    assert f"model {reg} is a regression model taking inputs of shape (1,), not images" in line


def test_predict_headerless_csv(clf, tmp_path):
    data = write_csv(tmp_path / "nh.csv", [row[1:] for row in random_rows(2, [0])], labelled=False, header=False)
    line = one_line_error(xnet("predict", clf, "--csv", data, "--out", tmp_path / "s.csv"))
    assert "no header line, so the first of its 784 columns was taken as a label" in line
    assert "783 do not form an image of the model's 784 pixels" in line
    assert not (tmp_path / "s.csv").exists()


def test_semicolon_csv_message_is_short(clf, tmp_path):
    rows = [row[1:] for row in random_rows(2, [0])]
    data = tmp_path / "semi.csv"
    lines = [";".join(f"pixel{i}" for i in range(PIXELS))] + [";".join(map(str, r)) for r in rows]
    data.write_text("\n".join(lines) + "\n")
    line = one_line_error(xnet("predict", clf, "--csv", data, "--out", tmp_path / "s.csv"))
    assert "line 2: pixel 0 is" in line and "separated by semicolons" in line
    assert len(line) < 300


def test_out_through_a_symlink_to_the_input_is_refused(clf, tmp_path):
    if not hasattr(os, "symlink"):
        pytest.skip("no symlinks here")
    data = write_csv(tmp_path / "test.csv", [row[1:] for row in random_rows(2, [0])], labelled=False)
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    assert "is the --csv input" in one_line_error(xnet("predict", clf, "--csv", data, "--out", link))


def test_checkpoint_with_a_now_refused_option_still_evaluates(clf, tmp_path):
    # an older xnet let `--optimizer adam --momentum 0.5` train; new runs refuse it, old models still load
    def old_options(h):
        h["state"]["config"].update(optimizer="adam", momentum=0.5)
        return h

    old = rewrite(clf, tmp_path / "old.npz", old_options)
    data = write_csv(tmp_path / "d.csv", random_rows(10, list(range(10))))
    r = xnet("evaluate", old, "--dataset", f"csv:{data}", "--split", "train")
    assert r.code == 0, r.err
    refused = xnet("train", "--dataset", f"csv:{data}", "--optimizer", "adam", "--momentum", "0.5",
                   "--out", tmp_path / "n")  # fmt: skip
    assert refused.code == 2 and "momentum" in refused.err
