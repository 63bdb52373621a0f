"""A study's results: one row per variant (mean and std over seeds), summary.md/.csv and figures."""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xnet.atomic import atomic_write_text

SUMMARY_COLUMNS = (
    "variant", "runs", "val_accuracy", "val_accuracy_std", "test_accuracy", "test_accuracy_std",
    "best_test_accuracy", "train_accuracy", "train_loss", "test_loss", "test_loss_std", "epochs", "seconds",
    "parameters", "status",
)  # fmt: skip

CHANCE_MARGIN = 1.5  # a final test accuracy below 1.5x chance is reported as "no learning"


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _num_classes(run_dir: Path | None) -> int | None:
    """Classes of a finished classification run, from its checkpoint's dataset record."""
    from xnet.train.checkpoint import load_checkpoint

    if run_dir is None or not (run_dir / "model.npz").is_file():
        return None
    try:
        return load_checkpoint(run_dir / "model.npz").get("num_classes")
    except Exception:  # a damaged checkpoint only costs the "no learning" flag
        return None


def summarize(name: str, runs: list[dict[str, Any]], dirs: Sequence[Path] | None = None) -> dict[str, Any]:
    """One summary row from the metrics of a variant's runs (mean over seeds, std of test results).

    status: "ok", "diverged (k of n)", or "no learning" when a classifier ends near chance.
    """
    ok = [r for r in runs if "test_loss" in r and not str(r.get("status", "")).startswith("diverged")]
    acc, acc_std = _mean_std([r.get("test_accuracy") for r in ok])
    loss, loss_std = _mean_std([r.get("test_loss") for r in ok])
    val, val_std = _mean_std([r.get("val_accuracy") for r in ok])  # None without a val_split
    diverged = [r for r in runs if str(r.get("status", "")).startswith("diverged")]
    if diverged:
        status = "diverged" + (f" ({len(diverged)} of {len(runs)} seeds)" if len(runs) > 1 else "")
        first = str(diverged[0]["status"])
        detail = first.split(": ", 1)[1] if ": " in first else first
    else:
        status, detail = "ok", ""
    classes = _num_classes(dirs[0]) if dirs and acc is not None else None
    if acc is not None and classes and acc < CHANCE_MARGIN / classes:
        status = "no learning" if status == "ok" else f"{status}, no learning"
    return {
        "variant": name,
        "runs": len(runs),
        "val_accuracy": val,
        "val_accuracy_std": val_std,
        "test_accuracy": acc,
        "test_accuracy_std": acc_std,
        "best_test_accuracy": _mean_std([r.get("best_test_accuracy") for r in ok])[0],
        "train_accuracy": _mean_std([r.get("train_accuracy") for r in ok])[0],
        "train_loss": _mean_std([r.get("train_loss") for r in ok])[0],
        "test_loss": loss,
        "test_loss_std": loss_std,
        "epochs": max((r.get("epochs_completed", 0) for r in runs), default=0),
        "seconds": _mean_std([r.get("train_seconds") for r in ok])[0],
        "parameters": ok[0].get("num_parameters") if ok else None,
        "status": status,
        "status_detail": detail,
        "histories": [r.get("epochs") or [] for r in runs],
        "dirs": list(dirs or []),
        "configs": [r["config"] for r in runs if isinstance(r.get("config"), dict)],
    }


def _fmt(v: Any, pct: bool = False, std: float | None = None) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{100 * v:.2f}%" + (f" ± {100 * std:.2f}" if std is not None else "")
    text = f"{v:.4g}" if isinstance(v, float) else str(v)
    return text + (f" ± {std:.2g}" if std is not None else "")


def _distinct(configs: list[dict[str, Any]], key: str) -> list[Any]:
    values: list[Any] = []
    for c in configs:
        if c.get(key) not in values:
            values.append(c.get(key))
    return values


def _join(values: list[Any]) -> str:
    return ", ".join(map(str, values[:-1])) + " or " + str(values[-1]) if len(values) > 1 else str(values[0])


def settings_line(rows: list[dict[str, Any]]) -> str:
    """What the runs were really trained with (after command-line overrides): data, limit, epochs, seeds."""
    configs = [c for r in rows for c in r.get("configs", [])]
    if not configs:
        return ""
    parts = [f"dataset {_join(_distinct(configs, 'dataset'))}"]
    limits = _distinct(configs, "limit")
    if limits != [None]:
        parts[0] += f", first {_join(['all' if v is None else v for v in limits])} training samples"
    epochs = _distinct(configs, "epochs")
    parts.append(f"{_join(epochs)} epoch{'s' * (epochs != [1])} per run")
    seeds = sorted(v for v in _distinct(configs, "seed") if isinstance(v, int))
    if seeds:
        parts.append(f"seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}")
    return "Runs: " + "; ".join(parts) + "."


def overrides_line(overrides: dict[str, Any] | None) -> str:
    """The options the command line set for every variant, which the study file's text may not describe."""
    if not overrides:
        return ""
    flags = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in overrides.items())
    return f"Set on the command line for every variant (overriding the study file and its notes): {flags}."


def summary_markdown(
    study: Any, rows: list[dict[str, Any]], overrides: dict[str, Any] | None = None, images: Sequence[str] = ()
) -> str:
    """The study's table in markdown (accuracy columns only when the task has accuracies).

    `overrides` are the command-line options applied to every run; `images` the figures written
    beside summary.md, embedded at the end.
    """
    repeat = max((r["runs"] for r in rows), default=1)
    classify = any(r["test_accuracy"] is not None for r in rows) or not any(r["test_loss"] for r in rows)
    # studies that hold out a validation split are meant to be read (and chosen) on it: its column comes first
    with_val = classify and any(r.get("val_accuracy") is not None for r in rows)
    lines = [f"# {study.name}", ""]
    if study.description:
        lines += [study.description, ""]
    if classify:
        head = ["variant", *(["final val acc"] if with_val else []), "final test acc", "best test acc",
                "final train acc", "test loss"]
    else:
        head = ["variant", "final test MSE", "final train loss"]
    head += ["epochs", "seconds", "params", "status"]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        if classify:
            cells = [*([_fmt(r.get("val_accuracy"), True, r.get("val_accuracy_std"))] if with_val else []),
                     _fmt(r["test_accuracy"], True, r["test_accuracy_std"]), _fmt(r["best_test_accuracy"], True),
                     _fmt(r["train_accuracy"], True), _fmt(r["test_loss"])]  # fmt: skip
        else:
            cells = [_fmt(r["test_loss"], std=r["test_loss_std"]), _fmt(r["train_loss"])]
        seconds = f"{r['seconds']:.1f}" if r["seconds"] is not None else "-"
        cells += [str(r["epochs"]), seconds, _fmt(r["parameters"]), r["status"]]
        lines.append("| " + " | ".join([r["variant"], *cells]) + " |")
    lines.append("")
    lines += [line for line in (settings_line(rows), overrides_line(overrides)) if line]
    if repeat > 1:
        lines.append(f"Mean over {repeat} seeds; ± is the standard deviation over seeds.")
    if classify:
        lines.append("Accuracies and losses are those after the last epoch; best test acc is the highest "
                     "after any epoch (for information only: select models on a validation split). "
                     "Train loss includes any L1/L2 penalty; seconds are training time per run.")  # fmt: skip
    else:
        lines.append("Losses are those after the last epoch; seconds are training time per run.")
    for r in rows:
        if r["status_detail"]:
            lines.append(f"\n{r['variant']}: {r['status_detail']}")
    if study.notes:
        lines += ["", study.notes]
    for image in images:
        lines += ["", f"![{Path(image).stem}]({image})"]
    return "\n".join(lines) + "\n"


def write_summary(
    study: Any, rows: list[dict[str, Any]], out_dir: Path, overrides: dict[str, Any] | None = None
) -> list[str]:
    """summary.md, summary.csv and curves.png (and predictions.png for 1-D regression); returns the
    names of the files written: without matplotlib there are no figures, and summary.md embeds none."""
    from xnet.plots.study import plot_study

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_dir / "summary.csv", buf.getvalue())
    images = []
    curves = {r["variant"]: [h for h in r["histories"] if h] for r in rows}
    failed = {r["variant"]: r["status"] for r in rows if r["status"] != "ok"}
    if plot_study(curves, out_dir / "curves.png", study.name, failed):
        images.append("curves.png")
    regression = rows and all(r["test_accuracy"] is None for r in rows)
    if regression and write_regression_fits(rows, out_dir / "predictions.png", study.name):
        images.append("predictions.png")
    atomic_write_text(out_dir / "summary.md", summary_markdown(study, rows, overrides, images))
    return ["summary.md", "summary.csv", *images]


def write_regression_fits(rows: list[dict[str, Any]], path: Path, title: str) -> bool:
    """predictions.png: every finished variant's fit on the 1-D test set (first seed's model)."""
    import numpy as np

    from xnet.data import load_dataset
    from xnet.plots.curves import have_matplotlib
    from xnet.plots.study import plot_regression_fits
    from xnet.runs.restore import restore

    if not have_matplotlib():
        return False  # nothing to draw with: do not read models and data for it
    predictions, data = {}, None
    for r in rows:
        if r["status"].startswith("diverged") or not r["dirs"] or not (r["dirs"][0] / "model.npz").is_file():
            continue
        restored = restore(r["dirs"][0] / "model.npz")
        cfg = restored.config
        if restored.task != "regression" or int(np.prod(restored.input_shape)) != 1:
            return False  # only a 1-D regression has a fit to draw: its data need not be read
        if data is None:
            ds = load_dataset(cfg.dataset, data_dir=cfg.data_dir, normalize=cfg.normalize,
                              val_split=cfg.val_split, seed=cfg.seed, limit=cfg.limit)  # fmt: skip
            if ds.test is None or ds.test.x.reshape(len(ds.test.x), -1).shape[1] != 1:
                return False
            data = ds.test
        x = restored.backend.asarray(data.x, cfg.dtype)
        predictions[r["variant"]] = restored.backend.to_numpy(restored.model.forward(x))
    if not predictions or data is None:
        return False
    return plot_regression_fits(np.asarray(data.x), np.asarray(data.y), predictions, path,
                                f"{title}: predictions on the test points")  # fmt: skip
