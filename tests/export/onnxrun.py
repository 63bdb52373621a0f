"""Run an exported model with onnxruntime on the CPU (the tests skip where it is not installed); random models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xnet.nn.module import Module


def randomised(model: Module, seed: int = 0) -> Module:
    """`model` with every parameter and buffer random (biases and batch-norm statistics are 0/1 at first)."""
    rng = np.random.default_rng(seed)
    model.load_state_dict({
        k: rng.uniform(0.5, 1.5, v.shape) if k.endswith("running_var") else rng.normal(0, 0.5, v.shape)
        for k, v in model.state_dict().items()
    })  # fmt: skip
    return model


def session(path: Path):
    """An onnxruntime CPU session for the file at `path`."""
    ort = pytest.importorskip("onnxruntime", reason='onnxruntime is not installed (pip install "xnet[onnx]")')
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the machine is shared; one thread also keeps sums in one order
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(path: Path, x: np.ndarray) -> np.ndarray:
    """The exported model's output for input x."""
    return session(path).run(None, {"input": x})[0]
