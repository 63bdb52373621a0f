"""Run an exported model with onnxruntime on the CPU (the tests skip where it is not installed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def session(path: Path):
    """An onnxruntime CPU session for the file at `path`."""
    ort = pytest.importorskip("onnxruntime", reason='onnxruntime is not installed (pip install "xnet[onnx]")')
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the machine is shared; one thread also keeps sums in one order
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(path: Path, x: np.ndarray) -> np.ndarray:
    """The exported model's output for input x."""
    return session(path).run(None, {"input": x})[0]
