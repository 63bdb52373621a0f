"""`xnet plot RUN_DIR... -o curves.png`: overlay the curves of several runs."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer

from xnet.errors import XnetError

# the per-epoch values `xnet plot` draws; every other key of an epoch record is ignored
PLOTTED = tuple(f"{split}_{metric}" for split in ("train", "val", "test") for metric in ("loss", "accuracy"))


def plot(
    runs: list[Path] = typer.Argument(..., help="Run folders written by `xnet train --out`."),
    output: Path = typer.Option(
        Path("curves.png"), "-o", "--output", help="The image to write; its suffix picks the format (.png, .pdf, .svg)."
    ),
) -> None:
    """Overlay loss and accuracy per epoch of several runs in one image."""
    from xnet.plots.curves import have_matplotlib, image_format, plot_histories

    if not have_matplotlib():
        raise XnetError('plotting needs matplotlib: pip install "xnet[plot]"')
    try:
        image_format(output)  # before reading any run: a bad -o fails at once
    except ValueError as e:
        raise XnetError(f"--output {e}") from None
    folders = list({os.path.abspath(run): run for run in runs}.values())  # the same folder twice is one curve
    histories, skipped = {}, []
    for run, label in zip(folders, run_labels(folders), strict=True):
        history = read_history(run)
        problem = _nothing_to_plot(history)
        if problem:
            skipped.append((run, problem))
        else:
            histories[label] = history
    if not histories:
        raise XnetError("nothing to plot: " + "; ".join(f"{run} {problem}" for run, problem in skipped))
    for run, problem in skipped:
        print(f"xnet: warning: skipping {run}: it {problem}", file=sys.stderr)
    plot_histories(histories, output)
    print(f"wrote {output}")


def run_labels(runs: Sequence[Path]) -> list[str]:
    """Each run's shortest path suffix that no other run ends with ("a/run", "b/run"), so same-named folders differ."""
    parts = [Path(os.path.abspath(run)).parts for run in runs]
    labels = []
    for i, mine in enumerate(parts):
        others = [theirs for j, theirs in enumerate(parts) if j != i]
        # distinct absolute paths always differ at the full length (the root is only ever the first part)
        k = next(k for k in range(1, len(mine) + 1) if all(theirs[-k:] != mine[-k:] for theirs in others))
        labels.append(str(Path(*mine[-k:])))
    return labels


def read_history(run: Path) -> list[dict[str, Any]]:
    """The epoch records of `run`/metrics.json, checked to be what `xnet train` writes; XnetError naming the problem."""
    path = run / "metrics.json"

    def bad(problem: str) -> XnetError:
        return XnetError(f"{path}: not an xnet run's metrics ({problem})")

    try:
        text = path.read_bytes().decode("utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise XnetError(f"{run} is not a run folder: {path} is missing") from None
    except UnicodeDecodeError:
        raise bad("not UTF-8 text") from None
    try:
        metrics = json.loads(text)
    except json.JSONDecodeError as e:
        raise bad(f"not valid JSON: {e}" if text.strip() else "the file is empty") from None
    if not isinstance(metrics, dict):
        raise bad(f"expected a JSON object, got {_describe(metrics)}")
    if "epochs" not in metrics:
        raise bad('no "epochs" key')
    epochs = metrics["epochs"]
    if not isinstance(epochs, list):
        raise bad(f'"epochs" is {_describe(epochs)}, expected a list of epoch records')
    for i, record in enumerate(epochs):
        _check_record(record, f"epochs[{i}]", bad)
    return epochs


def _check_record(record: Any, where: str, bad: Callable[[str], XnetError]) -> None:
    """An epoch record is an object with a finite "epoch" number and numbers or nulls for the plotted values."""
    if not isinstance(record, dict):
        raise bad(f"{where} is {_describe(record)}, expected an object")
    if not (_is_number(record.get("epoch")) and math.isfinite(record["epoch"])):
        got = _describe(record["epoch"]) if "epoch" in record else "missing"
        raise bad(f'{where}["epoch"] is {got}, expected the epoch number')
    for key in PLOTTED:
        value = record.get(key)
        if value is not None and not _is_number(value):
            raise bad(f'{where}["{key}"] is {_describe(value)}, expected a number or null')


def _nothing_to_plot(history: list[dict[str, Any]]) -> str:
    """Why a run has no curve to draw ("has no finished epochs"), or "" when it has one."""
    if not history:
        return "has no finished epochs"
    if not any(_is_number(r.get(k)) and math.isfinite(r[k]) for r in history for k in PLOTTED):
        return "has no finite loss or accuracy values"
    return ""


def _is_number(value: Any) -> bool:
    """A JSON number (bool is an int in Python, but true/false is no loss)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    """A short description of a JSON value for an error message: the value itself when short, else its type."""
    text = json.dumps(value)
    if len(text) <= 30:
        return text
    kinds = {dict: "an object", list: "a list", str: "a string"}
    return kinds.get(type(value), "a value")
