"""Study figures: test accuracy and training loss of every variant, and 1-D regression fits."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xnet.plots.curves import _figure, _legend, _log_scale_if_positive, _save, have_matplotlib

LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "x")


def _mean_curve(histories: Sequence[Sequence[dict[str, Any]]], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs, mean and std over seeds of `key` (NaN where a value is missing or not finite)."""
    n = max(len(h) for h in histories)
    table = np.full((len(histories), n), np.nan)
    for i, history in enumerate(histories):
        for j, record in enumerate(history):
            v = record.get(key)
            if v is not None and np.isfinite(v):
                table[i, j] = v
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column is a valid gap
        mean = np.nanmean(table, axis=0)
        std = np.nanstd(table, axis=0) if len(histories) > 1 else np.zeros(n)
    return np.arange(1, n + 1), mean, std


def plot_study(
    curves: Mapping[str, Sequence[Sequence[dict[str, Any]]]],
    path: str | Path,
    title: str = "",
    failed: Mapping[str, str] | None = None,
) -> bool:
    """Left: test accuracy (or test loss for regression) per epoch; right: training loss.

    `curves` maps a variant name to the epoch histories of its seeds (mean drawn, +-std shaded
    when there are several); `failed` maps variants that diverged to a short status for the
    legend. False without matplotlib.
    """
    if not have_matplotlib():
        return False
    failed = dict(failed or {})
    runs = [h for hs in curves.values() for h in hs if h]
    classify = any(r.get("test_accuracy") is not None for h in runs for r in h)
    left_key, left_label = ("test_accuracy", "test accuracy (%)") if classify else ("test_loss", "test loss")
    with _figure(ncols=2, figsize=(12, 4.6)) as (fig, (ax_l, ax_r)):
        _draw_variants(ax_l, ax_r, curves, failed, left_key)
        ax_l.set_ylabel(left_label)
        ax_r.set_ylabel("training loss")
        _log_scale_if_positive(ax_r)
        if not classify:
            _log_scale_if_positive(ax_l)
        longest = max((len(h) for h in runs), default=1)
        shortest = min((len(h) for h in runs), default=1)
        for ax in (ax_l, ax_r):
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3, which="both")
            if longest >= 10 * max(shortest, 1):
                ax.set_xscale("log")  # runs of 1 and 100 epochs side by side
        if classify:
            _zoom_accuracy(ax_l, runs)
        _legend(ax_l, fontsize=8, loc="best")
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        _save(fig, path)
    return True


def _draw_variants(
    ax_l: Any,
    ax_r: Any,
    curves: Mapping[str, Sequence[Sequence[dict[str, Any]]]],
    failed: Mapping[str, str],
    left_key: str,
) -> None:
    """Each variant's mean curve (+-std shaded over seeds) on both axes; a failed variant only in the legend."""
    import matplotlib

    names = list(dict.fromkeys([*curves, *failed]))
    for i, name in enumerate(names):
        color = f"C{i % 10}" if i < 10 else matplotlib.colormaps["tab20"](i % 20)
        histories = [h for h in curves.get(name, []) if h]
        label = name + (f" ({failed[name]})" if name in failed else "")
        if not histories:
            ax_l.plot([], [], "x", color=color, label=label)
            continue
        for ax, key in ((ax_l, left_key), (ax_r, "train_loss")):
            epochs, mean, std = _mean_curve(histories, key)
            scale = 100.0 if key == "test_accuracy" else 1.0
            # line style and marker vary too, so identical curves (e.g. two runs stuck at chance) stay visible
            marker = MARKERS[i % len(MARKERS)] if len(epochs) <= 25 else None
            ax.plot(epochs, mean * scale, LINESTYLES[i % len(LINESTYLES)], color=color, marker=marker,
                    markersize=4, markerfacecolor="none", label=label if ax is ax_l else None)  # fmt: skip
            if len(histories) > 1:
                ax.fill_between(epochs, (mean - std) * scale, (mean + std) * scale, color=color, alpha=0.15)


def _zoom_accuracy(ax: Any, runs: Sequence[Sequence[dict[str, Any]]]) -> None:
    """When every accuracy is above 50%, zoom to the range they span, so close curves separate."""
    values = [100 * r["test_accuracy"] for h in runs for r in h if r.get("test_accuracy") is not None]
    if values and min(values) >= 50:
        ax.set_ylim(min(values) - 0.5, min(100.0, max(values) + 0.5))


def plot_regression_fits(
    x: np.ndarray, y_true: np.ndarray, predictions: Mapping[str, np.ndarray], path: str | Path, title: str = ""
) -> bool:
    """Every variant's prediction against the truth on a 1-D test set; False without matplotlib."""
    if not have_matplotlib():
        return False
    x = np.asarray(x).reshape(-1)
    order = np.argsort(x)
    with _figure(figsize=(8, 4.6)) as (fig, ax):
        ax.scatter(x, np.asarray(y_true).reshape(-1), s=10, color="0.45", label="truth (test points)", zorder=3)
        for i, (name, pred) in enumerate(predictions.items()):
            ax.plot(x[order], np.asarray(pred).reshape(-1)[order], color=f"C{i % 10}", label=name)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if title:
            ax.set_title(title)
        fig.tight_layout()
        _save(fig, path)
    return True
