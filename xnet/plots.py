"""Curves and prediction plots (matplotlib is optional: without it, plots are skipped)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def have_matplotlib() -> bool:
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; works without a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> None:
    """Save a figure atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def plot_histories(histories: Mapping[str, Sequence[dict[str, Any]]], path: str | Path) -> bool:
    """Loss and accuracy per epoch (train/val/test) of one or more runs in one PNG; False without matplotlib."""
    if not have_matplotlib():
        return False
    plt = _pyplot()
    has_acc = any(r.get("train_accuracy") is not None for h in histories.values() for r in h)
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(11 if has_acc else 6, 4), squeeze=False)
    styles = {"train": "-", "val": "--", "test": ":"}
    for i, (label, history) in enumerate(histories.items()):
        color = f"C{i % 10}"
        epochs = [r["epoch"] for r in history]
        for split, style in styles.items():
            for ax, metric in zip(axes[0], ("loss", "accuracy"), strict=False):
                values = [r.get(f"{split}_{metric}") for r in history]
                if any(v is not None for v in values):
                    name = f"{label} {split}" if len(histories) > 1 else split
                    ax.plot(epochs, [np.nan if v is None else v for v in values], style, color=color, label=name)
    for ax, metric in zip(axes[0], ("loss", "accuracy"), strict=False):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_yscale("log")
    _save(fig, path)
    plt.close(fig)
    return True


def plot_prediction(x: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, path: str | Path, title: str = "") -> bool:
    """Prediction against truth for a 1-D regression set; False without matplotlib."""
    if not have_matplotlib():
        return False
    plt = _pyplot()
    order = np.argsort(x.reshape(-1))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(x.reshape(-1), y_true.reshape(-1), s=8, color="0.5", label="truth")
    ax.plot(x.reshape(-1)[order], y_pred.reshape(-1)[order], color="C3", label="prediction")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title)
    ax.legend()
    _save(fig, path)
    plt.close(fig)
    return True
