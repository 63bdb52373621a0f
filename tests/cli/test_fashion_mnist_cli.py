"""`xnet train --dataset fashion-mnist`: bad files and names are one line, exit 2; exports name the classes."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest
from clirun import one_line_error, xnet
from digitsets import write_digit_set

from xnet.data.fashion_mnist import FASHION_MNIST


def test_a_wrong_checksum_is_one_line_exit_2_and_nothing_written(fashion_isolated):
    folder = write_digit_set(fashion_isolated / "data" / "fashion-mnist", 20, 6)  # not the official files
    out = fashion_isolated / "run"
    line = one_line_error(xnet("train", "--dataset", "fashion-mnist", "--data-dir", str(folder.parent),
                               "--epochs", "1", "--out", str(out), "-q"))  # fmt: skip
    assert "md5 mismatch" in line and "expected" in line and "Fashion-MNIST" in line
    assert any(f"got {hashlib.md5((folder / n).read_bytes()).hexdigest()}" in line for _, n in FASHION_MNIST.files)
    assert any(f"expected {FASHION_MNIST.md5[n]}" in line for _, n in FASHION_MNIST.files)  # the official md5
    assert not out.exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted(n for _, n in FASHION_MNIST.files)


def test_an_unknown_dataset_names_fashion_mnist(fashion_isolated):
    line = one_line_error(xnet("train", "--dataset", "fashion", "--epochs", "1", "-q"))
    assert "unknown dataset 'fashion'" in line and "fashion-mnist" in line


def test_an_exported_fashion_mnist_model_names_its_classes(fashion_isolated, monkeypatch):
    onnx = pytest.importorskip("onnx", reason='onnx is not installed (pip install "xnet[onnx]")')
    folder = write_digit_set(fashion_isolated / "data" / "fashion-mnist", 30, 12, seed=4)
    for _, name in FASHION_MNIST.files:  # these files stand in for the official ones
        data = (folder / name).read_bytes()
        monkeypatch.setitem(FASHION_MNIST.md5, name, hashlib.md5(data).hexdigest())
        monkeypatch.setitem(FASHION_MNIST.md5, name[:-3], hashlib.md5(gzip.decompress(data)).hexdigest())
    run = fashion_isolated / "run"
    r = xnet("train", "--dataset", "fashion-mnist", "--data-dir", folder.parent, "--hidden", "8", "--epochs", "1",
             "--val-split", "0", "--out", run, "-q")  # fmt: skip
    assert r.code == 0, r.err
    assert xnet("export", run, fashion_isolated / "m.onnx").code == 0
    props = {p.key: p.value for p in onnx.load(str(fashion_isolated / "m.onnx")).metadata_props}
    names = json.loads(props["class_names"])
    assert names == list(FASHION_MNIST.class_names) and names[0] == "T-shirt/top" and names[9] == "Ankle boot"
