"""The learning-rate range test's figure: loss against lr (log scale), raw and smoothed, the suggestion marked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xnet.plots.curves import _figure, _legend, _save


def plot_lr_find(
    lrs: Sequence[float], losses: Sequence[float], smoothed: Sequence[float], suggestion: float, path: str | Path,
    title: str = "learning-rate range test",
) -> None:  # fmt: skip
    """lr_find.png: each step's loss (faint) and the smoothed loss against lr, a line at the suggested lr."""
    lo = float(np.nanmin(smoothed))
    # the sweep ends where the loss blows up: keep the axis on the part worth reading
    top = max(float(smoothed[0]), lo) * 1.5 if np.isfinite(smoothed[0]) else None
    with _figure(figsize=(6.4, 4.2)) as (fig, ax):
        ax.plot(lrs, losses, color="0.75", linewidth=1, label="loss per step")
        ax.plot(lrs, smoothed, color="C0", linewidth=2, label="smoothed")
        ax.axvline(suggestion, color="C3", linestyle="--", label=f"suggested lr {suggestion:.3g}")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        if top is not None and top > lo:
            ax.set_ylim(min(lo, float(np.nanmin(losses))) * 0.9, top)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        _legend(ax)
        _save(fig, path)
