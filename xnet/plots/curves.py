"""Curves and prediction plots (matplotlib is optional: without it, plots are skipped)."""

from __future__ import annotations

import errno
import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from xnet.atomic import atomic_write_bytes


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


def image_formats() -> list[str]:
    """The file suffixes (without the dot) matplotlib can write, e.g. png, pdf, svg."""
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def image_format(path: str | Path) -> str:
    """The image format named by `path`'s suffix; IsADirectoryError or ValueError when it cannot be an image."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
    fmt = path.suffix[1:].lower()
    formats = image_formats()
    if fmt not in formats:
        problem = f"unknown image format {path.suffix!r}" if fmt else "no suffix to tell the image format from"
        raise ValueError(f"{path}: {problem}; end the name with one of .{', .'.join(formats)}")
    return fmt


@contextmanager
def _figure(**kwargs: Any) -> Iterator[tuple[Any, Any]]:
    """`plt.subplots(**kwargs)`, closed on the way out whatever happens (no figure leaks when saving fails)."""
    plt = _pyplot()
    fig, axes = plt.subplots(**kwargs)
    try:
        yield fig, axes
    finally:
        plt.close(fig)


def _save(fig: Any, path: str | Path) -> None:
    """Render the figure in memory in the format of `path`'s suffix, then write it atomically."""
    fmt = image_format(path)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight")
    except RuntimeError as e:  # e.g. pgf without a LaTeX install
        raise ValueError(f"{path}: matplotlib cannot write {fmt} here: {e}") from None
    atomic_write_bytes(path, buf.getvalue())


def _legend(ax: Any, **kwargs: Any) -> None:
    """A legend, only when something is labelled (an empty one is a matplotlib warning)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _log_scale_if_positive(ax: Any) -> None:
    """Log y-axis when every plotted value is positive; linear otherwise (a log axis would hide the rest)."""
    values = np.concatenate([np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()] or [np.empty(0)])
    values = values[np.isfinite(values)]
    if values.size and (values > 0).all():
        ax.set_yscale("log")


def _finite_or_nan(values: Sequence[Any]) -> list[float]:
    """None, NaN and infinities become NaN: a gap in the line, not a point off the chart."""
    return [np.nan if v is None or not np.isfinite(v) else float(v) for v in values]


def _draw_run(axes: Sequence[Any], history: Sequence[dict[str, Any]], color: str, prefix: str) -> None:
    """One run's train/val/test curves on the loss axis (and accuracy axis, when there is one)."""
    epochs = [r["epoch"] for r in history]
    marker = "o" if len(epochs) == 1 else None  # a one-epoch line has no length: show its point
    for split, style in (("train", "-"), ("val", "--"), ("test", ":")):
        for ax, metric in zip(axes, ("loss", "accuracy"), strict=False):
            values = [r.get(f"{split}_{metric}") for r in history]
            if any(v is not None for v in values):
                ax.plot(epochs, _finite_or_nan(values), style, color=color, marker=marker, label=prefix + split)


def plot_histories(histories: Mapping[str, Sequence[dict[str, Any]]], path: str | Path) -> bool:
    """Loss and accuracy per epoch (train/val/test) of one or more runs in one image; False without matplotlib."""
    if not have_matplotlib():
        return False
    has_acc = any(r.get("train_accuracy") is not None for h in histories.values() for r in h)
    with _figure(ncols=2 if has_acc else 1, figsize=(11 if has_acc else 6, 4), squeeze=False) as (fig, axes):
        for i, (label, history) in enumerate(histories.items()):
            _draw_run(axes[0], history, f"C{i % 10}", f"{label} " if len(histories) > 1 else "")
        for ax, metric in zip(axes[0], ("loss", "accuracy"), strict=False):
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric)
            ax.grid(alpha=0.3)
            _legend(ax, fontsize=8)
        _log_scale_if_positive(axes[0][0])
        _save(fig, path)
    return True


def plot_prediction(x: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, path: str | Path, title: str = "") -> bool:
    """Prediction against truth for a 1-D regression set; False without matplotlib."""
    if not have_matplotlib():
        return False
    order = np.argsort(x.reshape(-1))
    with _figure(figsize=(7, 4)) as (fig, ax):
        ax.scatter(x.reshape(-1), y_true.reshape(-1), s=8, color="0.5", label="truth")
        ax.plot(x.reshape(-1)[order], y_pred.reshape(-1)[order], color="C3", label="prediction")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title(title)
        ax.legend()
        _save(fig, path)
    return True
