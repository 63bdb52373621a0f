"""Reporters: what the trainer shows while it runs (a rich bar, plain lines, or nothing)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Reporter:
    """Receives training events; the base class shows nothing."""

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        """An epoch of `steps` steps begins (epochs are numbered from 1)."""

    def steps_done(self, step: int, loss: float, samples_per_s: float) -> None:
        """Called once per reporting interval with the running training loss."""

    def epoch_end(self, record: dict[str, Any]) -> None:
        """An epoch finished; `record` holds its metrics."""

    def message(self, text: str) -> None:
        """A line the user should see (data source, resume hints)."""

    def close(self) -> None:
        """Training ended (normally or not)."""


def format_record(r: dict[str, Any]) -> str:
    """One summary line for an epoch record."""
    parts = [f"epoch {r['epoch']:>3}"]
    for split in ("train", "val", "test"):
        loss = r.get(f"{split}_loss")
        if loss is None:
            continue
        acc = r.get(f"{split}_accuracy")
        parts.append(f"{split} loss {loss:.4f}" + (f" acc {acc:.2%}" if acc is not None else ""))
    parts.append(f"lr {r['lr']:.3g}")
    parts.append(f"{r['seconds']:.1f}s")
    return " | ".join(parts)


class LineReporter(Reporter):
    """One line per epoch (and messages) on a stream; used when stdout is not a terminal."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout

    def epoch_end(self, record):
        print(format_record(record), file=self.stream, flush=True)

    def message(self, text):
        print(text, file=self.stream, flush=True)


class QuietReporter(Reporter):
    """Shows nothing while training (the CLI prints the final summary itself)."""


class TextBarReporter(LineReporter):
    """A one-line bar redrawn in place with a carriage return (steps, loss, samples/s), then a line per epoch.

    For Jupyter notebooks and other outputs that honour '\\r' but are no terminal: rich's live display
    needs ipywidgets in a notebook, this needs nothing.
    """

    width = 30

    def __init__(self, stream: TextIO | None = None):
        super().__init__(stream)
        self._head, self._steps, self._drawn = "", 1, 0

    def epoch_start(self, epoch, epochs, steps):
        self._head, self._steps = f"epoch {epoch}/{epochs}", max(steps, 1)
        self._draw(f"{self._head} [{'.' * self.width}] 0/{steps}")

    def steps_done(self, step, loss, samples_per_s):
        filled = self.width * step // self._steps
        bar = "#" * filled + "." * (self.width - filled)
        self._draw(f"{self._head} [{bar}] {step}/{self._steps} loss {loss:.4f} {samples_per_s:,.0f} samples/s")

    def epoch_end(self, record):
        self._clear()
        super().epoch_end(record)

    def message(self, text):
        self._clear()
        super().message(text)

    def _draw(self, text: str) -> None:
        # pad over a longer previous line: '\r' only moves back, it does not erase
        self.stream.write("\r" + text.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(text)

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self._drawn = 0

    def close(self):
        self._clear()
        self.stream.flush()


class RichReporter(LineReporter):
    """A rich progress bar per epoch (steps, loss, throughput) plus one summary line per epoch."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console()
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} samples/s"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.task = None
        self._started = False

    def epoch_start(self, epoch, epochs, steps):
        if not self._started:
            self.progress.start()
            self._started = True
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(
            "train", total=steps, epoch=f"{epoch}/{epochs}", loss="-", rate="-"
        )
        self._t0 = time.perf_counter()

    def steps_done(self, step, loss, samples_per_s):
        if self.task is not None:
            self.progress.update(
                self.task, completed=step, loss=f"{loss:.4f}", rate=f"{samples_per_s:,.0f}"
            )

    def epoch_end(self, record):
        self.progress.console.print(format_record(record), highlight=False)

    def message(self, text):
        self.progress.console.print(text, highlight=False)

    def close(self):
        if self._started:
            self.progress.stop()
            self._started = False


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython's ZMQ shell), where stdout is no terminal but shows '\\r'."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return type(shell).__name__ == "ZMQInteractiveShell"


VERBOSE = (0, 1, 2, "auto")


def reporter_for(verbose: int | str | None = "auto", given: Reporter | None = None) -> Reporter:
    """The reporter for `verbose`, as Keras's fit: 0 silent, 1 a live bar, 2 one line per epoch, "auto" a bar
    in a terminal or a notebook and lines elsewhere (a log file). None keeps `given` when there is one."""
    if verbose is None:
        if given is not None:
            return given
        verbose = "auto"
    if isinstance(verbose, bool) or verbose not in VERBOSE:
        raise ValueError(
            f"verbose must be 0 (silent), 1 (a progress bar), 2 (one line per epoch) or 'auto', got {verbose!r}"
        )
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() or in_notebook() else 2
    if verbose == 0:
        return QuietReporter()
    if verbose == 2:
        return LineReporter()
    return RichReporter() if sys.stdout.isatty() else TextBarReporter()


def make_reporter(quiet: bool) -> Reporter:
    """The CLI's: quiet, a rich bar when stdout is a terminal, else plain lines."""
    return reporter_for(0 if quiet else "auto")
