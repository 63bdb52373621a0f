"""A run folder on disk: the files a run writes, where a new run goes, and replacing an older run's files."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from xnet.atomic import atomic_write_text
from xnet.config import RunConfig
from xnet.errors import XnetError
from xnet.train.history import COLUMNS, history_csv

HISTORY_COLUMNS = COLUMNS  # history.csv's columns (the trainer writes the file live: xnet/train/history.py)
# every file a training run writes in its folder (--overwrite deletes these and nothing else)
RUN_FILES = ("metrics.json", "history.csv", "model.npz", "best.npz", "config.toml", "curves.png", "prediction.png")


def default_out_dir(cfg: RunConfig) -> Path:
    """runs/<timestamp>-<model>, with -2, -3, ... when runs started in the same second."""
    base = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{cfg.model}"
    out, n = base, 1
    while out.exists():  # a run folder that exists is refused, so the default must be new
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def check_out_dir(out_dir: Path) -> None:
    """Before any work: `out_dir` is a folder, or can become one, that this process may write in."""
    # the nearest existing folder decides: `out_dir` itself is created only by the first file written
    existing = out_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise XnetError(f"--out {out_dir}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise XnetError(f"--out {out_dir}: cannot write in {existing} (permission denied)")


def holds_run(out_dir: Path) -> bool:
    """Whether `out_dir` already holds the outputs of an xnet run."""
    return any((out_dir / name).exists() for name in ("metrics.json", "model.npz"))


def set_aside_run_files(out_dir: Path) -> Path | None:
    """Move the files a training run writes (nothing else) into a hidden folder of `out_dir`; returns it."""
    found = [out_dir / name for name in RUN_FILES if (out_dir / name).is_file() or (out_dir / name).is_symlink()]
    if not found:
        return None
    stash = Path(tempfile.mkdtemp(prefix=".replaced-", dir=out_dir))
    for path in found:
        os.replace(path, stash / path.name)
    return stash


def put_back_run_files(stash: Path, out_dir: Path) -> None:
    """Undo set_aside_run_files: the older run's files return to `out_dir`."""
    for path in stash.iterdir():
        os.replace(path, out_dir / path.name)
    stash.rmdir()


def diverged_metrics(cfg: RunConfig, history: list[dict[str, Any]], error: Exception) -> dict[str, Any]:
    """The metrics.json of a run that diverged: its finished epochs and a "status" saying why it stopped."""
    return {
        "status": f"diverged: {error}",
        "epochs": history,
        "epochs_completed": len(history),
        "seed": cfg.seed,
        "config": cfg.to_dict(),
    }


def write_record(out_dir: Path, metrics: dict[str, Any]) -> None:
    """metrics.json and history.csv (one row per finished epoch), each written atomically."""
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    atomic_write_text(out_dir / "history.csv", history_csv(metrics["epochs"]))
