"""`xnet train --resume-if-exists`: one command that starts a run, or continues it when the job runs again.

A scheduler that requeues a preempted job runs the same script again; with this flag the script
starts the run when its folder holds none, and continues it when the folder holds the same run.
The same run means the same configuration, except for the options that do not change what a step
computes, and `epochs`, which may be raised to train on (as `--resume --epochs N` allows): a run
resumed at epoch 3 of 10 with `--epochs 12` continues to 12, as a Keras `fit(initial_epoch=...)`
or a PyTorch loop resumed with a larger epoch count would. A folder holding another run is refused,
naming the first option that differs, so a typo in a job script never continues the wrong run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from xnet.config import LOCAL_KEYS, RunConfig, toml_value
from xnet.errors import XnetError

# out, quiet, data_dir: where the run goes and what it prints; device: xnet gives the same numbers on
# every device (a requeued job may land on another node); checkpoint_every: when it saves, not what
# it computes; epochs: raising it trains on (a schedule that depends on it, cosine by default, then
# bends from the resumed step on, as with --resume --epochs)
MAY_DIFFER = (*LOCAL_KEYS, "device", "checkpoint_every", "epochs")
NEW, RESUME, DONE = "new", "resume", "done"


def _shown(value: Any) -> str:
    return "its default" if value is None else toml_value(value)


def first_difference(saved: RunConfig, ours: RunConfig) -> str | None:
    """'lr = 0.01 there, 0.1 here' for the first option (in RunConfig order) that differs and may not; else None."""
    for field in dataclasses.fields(RunConfig):
        name = field.name
        theirs, mine = getattr(saved, name), getattr(ours, name)
        if name in MAY_DIFFER or theirs == mine:
            continue
        if name == "layers":
            return "the model's [[model.layers]] differ"
        return f"{name} = {_shown(theirs)} there, {_shown(mine)} here"
    return None


def _stopped_early(out_dir: Path) -> bool:
    """Whether the run's metrics.json says early stopping ended it (then there is nothing left to train)."""
    try:
        metrics = json.loads((out_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(metrics, dict) and bool(metrics.get("stopped_early")) and not metrics.get("interrupted")


def requeue_action(cfg: RunConfig) -> tuple[str, int]:
    """(NEW, 0), (RESUME, epochs done) or (DONE, epochs done) for the run `cfg` and its --out folder.

    XnetError when the folder holds another run, or a run with no checkpoint to continue."""
    from xnet.train.checkpoint import load_checkpoint
    from xnet.train.restore import saved_config
    from xnet.train.run import holds_run

    if not cfg.out:
        raise XnetError("--resume-if-exists needs --out DIR: the folder to continue when the job runs again")
    out_dir = Path(cfg.out)
    if not holds_run(out_dir):
        return NEW, 0
    path = out_dir / "model.npz"
    if not path.is_file():
        raise XnetError(
            f"--resume-if-exists: {out_dir} holds a run without a checkpoint ({path.name}) to continue; "
            "pass --overwrite to start it again, or choose another --out"
        )
    state = load_checkpoint(path)
    difference = first_difference(saved_config(path, state["config"]), cfg)
    if difference is not None:
        raise XnetError(
            f"--resume-if-exists: {out_dir} holds a run of another configuration ({difference}); "
            "choose another --out, or pass --overwrite to replace it"
        )
    done = state["trainer"]["epoch"]
    if not isinstance(done, int):
        from xnet.train.checkpoint import unusable

        raise unusable(path, f"its epoch count is {done!r}")
    return (DONE if done >= cfg.epochs or _stopped_early(out_dir) else RESUME), done


__all__ = ["DONE", "MAY_DIFFER", "NEW", "RESUME", "first_difference", "requeue_action"]
