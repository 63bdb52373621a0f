"""`xnet plot RUN_DIR... -o curves.png`: overlay the curves of several runs."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from xnet.cli.app import app
from xnet.errors import XnetError


@app.command()
def plot(
    runs: list[Path] = typer.Argument(..., help="Run folders written by `xnet train --out`."),
    output: Path = typer.Option(Path("curves.png"), "-o", "--output", help="The PNG to write."),
) -> None:
    """Overlay loss and accuracy per epoch of several runs in one PNG."""
    from xnet.plots import plot_histories

    histories = {}
    for run in runs:
        path = run / "metrics.json"
        try:
            metrics = json.loads(path.read_text())
        except FileNotFoundError:
            raise XnetError(f"{run} is not a run folder: {path} is missing") from None
        except json.JSONDecodeError as e:
            raise XnetError(f"{path} is not valid JSON: {e}") from None
        histories[run.name or str(run)] = metrics["epochs"]
    if not plot_histories(histories, output):
        raise XnetError('plotting needs matplotlib: pip install "xnet[plot]"')
    print(f"wrote {output}")
