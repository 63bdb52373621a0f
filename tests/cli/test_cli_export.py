"""`xnet export`: a trained run as ONNX (run by onnxruntime) or a PyTorch state dict; bad input is one line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from clirun import one_line_error, xnet

from xnet.data import load_dataset
from xnet.runs.restore import restore


def _session(path: Path):
    ort = pytest.importorskip("onnxruntime", reason='onnxruntime is not installed (pip install "xnet[onnx]")')
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _metadata(path: Path) -> dict[str, str]:
    onnx = pytest.importorskip("onnx", reason='onnx is not installed (pip install "xnet[onnx]")')
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


@pytest.fixture(scope="module")
def bn_run(tmp_path_factory) -> Path:
    """An MLP with batch norm and dropout, trained on 600 MNIST images for one epoch."""
    root = os.environ.get("XNET_DATA_DIR")
    if not root or not (Path(root) / "mnist").is_dir():
        pytest.skip("real MNIST not found: set XNET_DATA_DIR to a folder holding mnist/")
    out = tmp_path_factory.mktemp("run") / "bn"
    r = xnet("train", "--batch-norm", "--dropout", "0.2", "--limit", "600", "--epochs", "1", "--normalize", "standard",
             "--quiet", "--out", out)  # fmt: skip
    assert r.code == 0, r.err
    return out


@pytest.fixture(scope="module")
def sine_run(tmp_path_factory) -> Path:
    """A sine regression run (no MNIST needed), one epoch."""
    out = tmp_path_factory.mktemp("run") / "sine"
    r = xnet("train", "--dataset", "sine", "--loss", "mse", "--epochs", "1", "--hidden", "8", "--quiet", "--out", out)
    assert r.code == 0, r.err
    return out


def test_a_run_folder_exports_with_its_scaling_and_metadata(bn_run, tmp_path):
    pytest.importorskip("onnx", reason='onnx is not installed (pip install "xnet[onnx]")')
    r = xnet("export", bn_run, tmp_path / "m.onnx")
    assert r.code == 0, r.err
    raw = load_dataset("mnist", normalize="none").test.x[:500]  # pixels 0..255
    model = restore(bn_run / "model.npz")
    norm = model.normalization
    assert norm.mode == "standard" and norm.offset != 0  # a scaling that cannot pass unnoticed
    expected = model.backend.to_numpy(model.model.forward(norm.apply(raw)))
    got = _session(tmp_path / "m.onnx").run(None, {"input": raw})[0]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    props = _metadata(tmp_path / "m.onnx")
    assert json.loads(props["class_names"]) == [str(k) for k in range(10)]
    assert json.loads(props["xnet_config"])["batch_norm"] is True
    assert json.loads(props["normalization"]) == norm.to_dict()
    assert "the graph computes" in props["input"]


def test_onnxruntime_confusion_matrix_is_xnet_evaluates(bn_run, tmp_path):
    pytest.importorskip("onnx", reason='onnx is not installed (pip install "xnet[onnx]")')
    assert xnet("export", bn_run, tmp_path / "m.onnx").code == 0
    r = xnet("evaluate", bn_run / "model.npz", "--json")
    assert r.code == 0, r.err
    expected = np.array(json.loads(r.out)["confusion_matrix"])
    ds = load_dataset("mnist", normalize="none")  # the whole test set, raw pixels
    predicted = _session(tmp_path / "m.onnx").run(None, {"input": ds.test.x})[0].argmax(1)
    confusion = np.zeros((10, 10), np.int64)
    np.add.at(confusion, (ds.test.y, predicted), 1)
    assert expected.sum() == 10_000
    np.testing.assert_array_equal(confusion, expected)


def test_without_folding_the_inputs_are_scaled_already(sine_run, tmp_path):
    pytest.importorskip("onnx", reason='onnx is not installed (pip install "xnet[onnx]")')
    assert xnet("export", sine_run / "model.npz", tmp_path / "s.onnx", "--no-fold-normalization").code == 0
    model = restore(sine_run / "model.npz")
    x = np.linspace(-3, 3, 11, dtype=np.float32).reshape(11, 1)
    got = _session(tmp_path / "s.onnx").run(None, {"input": x})[0]
    np.testing.assert_allclose(got, model.backend.to_numpy(model.model.forward(x)), rtol=1e-5, atol=1e-6)
    props = _metadata(tmp_path / "s.onnx")
    assert "class_names" not in props and props["task"] == "regression" and "give (x - " in props["input"]


def test_torch_format(sine_run, tmp_path):
    r = xnet("export", sine_run, tmp_path / "s.pt", "--format", "torch")
    try:
        import torch
    except ImportError:
        assert "PyTorch is not installed" in one_line_error(r)
        assert not (tmp_path / "s.pt").exists()
        return
    assert r.code == 0, r.err
    state = torch.load(tmp_path / "s.pt")
    weights = restore(sine_run / "model.npz").model.state_dict()
    np.testing.assert_array_equal(state["1.weight"].numpy(), weights["1.weight"].T)  # nn.Linear's (out, in)


def test_without_the_onnx_package(sine_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # what `import onnx` meets where it is not installed
    line = one_line_error(xnet("export", sine_run, tmp_path / "m.onnx"))
    assert line.endswith('ONNX export needs the onnx package: pip install "xnet[onnx]"')
    assert not (tmp_path / "m.onnx").exists()


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_text("hello")
    assert "not an xnet checkpoint" in one_line_error(xnet("export", bad, tmp_path / "m.onnx"))
    (tmp_path / "sub").mkdir()
    assert "without model.npz" in one_line_error(xnet("export", tmp_path / "sub", tmp_path / "m.onnx"))
    assert "no run folder or checkpoint" in one_line_error(xnet("export", tmp_path / "nope", tmp_path / "m.onnx"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz", "sub"]  # nothing written


def test_bad_format_and_overwriting_the_checkpoint(sine_run, tmp_path):
    line = one_line_error(xnet("export", sine_run, tmp_path / "x", "--format", "tf"))
    assert "--format: expected one of onnx, torch, got 'tf'" in line
    line = one_line_error(xnet("export", sine_run, sine_run / "model.npz"))
    assert "is the checkpoint being exported" in line
    assert restore(sine_run / "model.npz").model is not None  # still a checkpoint
    assert not (tmp_path / "x").exists()
