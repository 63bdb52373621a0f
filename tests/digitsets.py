"""Tiny MNIST-shaped IDX files for tests: random 28x28 images, labels 0-9 in turn."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xnet.data import write_idx


def write_digit_set(folder: Path, n_train: int, n_test: int, gz: bool = True, seed: int = 0) -> Path:
    """Write MNIST's four files (train-/t10k- images and labels) with n_train and n_test samples."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", rng.integers(0, 256, (n, 28, 28), np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", (np.arange(n) % 10).astype(np.uint8))
    return folder
