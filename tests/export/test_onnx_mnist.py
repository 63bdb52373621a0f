"""Exported MLP, cnn, bn-cnn and a residual CNN under onnxruntime: xnet's classes and logits on 10,000 MNIST images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx", reason='onnx is not installed (pip install "xnet[onnx]")')

from onnxrun import run  # noqa: E402

from benchmarks.interop_check import settled_model  # noqa: E402
from xnet.data import load_dataset  # noqa: E402
from xnet.data.prepare import fit_normalization  # noqa: E402
from xnet.export import to_onnx  # noqa: E402


@pytest.fixture(scope="module")
def raw_mnist():
    """(first 512 training images, their labels, 10,000 test images), raw pixels 0..255 as float32."""
    root = os.environ.get("XNET_DATA_DIR")
    if not root or not (Path(root) / "mnist").is_dir():
        pytest.skip("real MNIST not found: set XNET_DATA_DIR to a folder holding mnist/")
    ds = load_dataset("mnist", data_dir=Path(root), normalize="none")
    return ds.train.x[:512], ds.train.y[:512], ds.test.x


@pytest.mark.slow  # three CNNs over 10,000 images, twice: seconds, not milliseconds
@pytest.mark.parametrize("preset", ["mlp", "cnn", "bn-cnn", "residual-cnn"])
def test_onnxruntime_gives_xnets_classes_and_logits(preset, raw_mnist, tmp_path):
    norm = fit_normalization("unit", raw_mnist[0])
    # four Adam steps from random weights; batch norms hold the statistics of those four batches
    model = settled_model(preset, norm.apply(raw_mnist[0]), 7, raw_mnist[1])
    path = to_onnx(model, tmp_path / f"{preset}.onnx", (1, 28, 28), norm)  # the graph takes raw pixels
    raw = raw_mnist[2]
    ours = np.concatenate([model.forward(norm.apply(raw[i : i + 2000])) for i in range(0, len(raw), 2000)])
    theirs = run(path, raw)
    assert theirs.shape == ours.shape == (10_000, 10) and theirs.dtype == np.float32
    assert np.abs(ours).max() > 1  # logits of a size where 1e-4 means something
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(theirs.argmax(1), ours.argmax(1))
