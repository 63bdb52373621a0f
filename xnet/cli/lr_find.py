"""`xnet lr-find [train options]`: the learning-rate range test on the run `xnet train` would start.

It takes every option of `xnet train` that describes a run (model, data, optimizer, batch size...),
builds that run, sweeps the learning rate over at most one epoch (xnet/train/lr_find.py), writes
lr_find.csv and lr_find.png in --out, and prints the suggested peak lr.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Any

import typer

from xnet.cli import train as train_command

# xnet train's flags that do not describe the run to sweep (what to do with a folder, how often to checkpoint)
NOT_HERE = ("resume", "overwrite", "resume_if_exists", "checkpoint_every", "early_stopping", "callbacks")
SWEEP = "Range test"


def lr_find(**options: Any) -> None:
    """Sweep the learning rate from --start-lr to --end-lr over at most one epoch and suggest a peak lr.

    Writes lr_find.csv (step, lr, loss, smoothed loss) and lr_find.png (the curve, the suggestion marked) in --out
    (default runs/<timestamp>-<model>-lr-find). The suggestion is the lr at the lowest loss, smoothed without lag
    over 0.2 decades of lr: the largest lr at which the loss still falls, a peak for --lr with the cosine or
    onecycle schedule. The model and optimizer are not saved: the sweep only measures.
    """
    from xnet.errors import XnetError
    from xnet.parallel.world import current_world
    from xnet.train.lr_find import check_bounds

    start_lr, end_lr, steps = options.pop("start_lr"), options.pop("end_lr"), options.pop("steps")
    check_bounds(start_lr, end_lr, "lr-find", ("--start-lr", "--end-lr"))
    if steps < 2:
        raise XnetError(f"lr-find: --steps must be at least 2 (lrs to try), got {steps}")
    if current_world() is not None:
        raise XnetError("xnet lr-find runs in one process: start it without mpiexec")
    config = options.pop("config")
    flags = {k: v for k, v in options.items() if v is not None}
    cfg = train_command.resolve_config(config, flags, resume=False)
    _sweep(cfg, start_lr, end_lr, steps)


def _sweep(cfg: Any, start_lr: float, end_lr: float, steps: int) -> None:
    from xnet.atomic import atomic_write_text
    from xnet.plots import have_matplotlib
    from xnet.runs.folder import check_out_dir, default_out_dir
    from xnet.runs.run import prepare_run
    from xnet.train.progress import make_reporter

    if cfg.out:
        out_dir = Path(cfg.out)
    else:
        out_dir = default_out_dir(cfg)
        out_dir = out_dir.with_name(f"{out_dir.name}-lr-find")
    check_out_dir(out_dir)
    run = prepare_run(cfg, out_dir, make_reporter(cfg.quiet))
    result = run.trainer.lr_find(run.loader, start_lr, end_lr, steps)
    atomic_write_text(out_dir / "lr_find.csv", result.to_csv())
    files = "lr_find.csv"
    if have_matplotlib():
        from xnet.plots.lr_find import plot_lr_find

        title = f"lr range test: {cfg.optimizer}, batch {run.loader.batch_size}, {len(result.lrs)} steps"
        plot_lr_find(result.lrs, result.losses, result.smoothed, result.suggestion, out_dir / "lr_find.png", title)
        files += " and lr_find.png"
    why = {"diverged": "the loss blew up", "end_lr": "it reached --end-lr", "epoch": "one epoch ended"}
    print(
        f"suggested peak lr {result.suggestion:.3g} (the lowest smoothed loss; steepest descent at "
        f"{result.candidates['steepest']:.3g}); {len(result.lrs)} steps from {result.lrs[0]:.3g} to "
        f"{result.lrs[-1]:.3g}, stopped as {why[result.stopped]}; {files} in {out_dir}"
    )


def _signature() -> inspect.Signature:
    """xnet train's parameters that describe a run, then the sweep's own, with their annotations resolved."""
    hints = typing.get_type_hints(train_command.train)
    params = [
        p.replace(annotation=hints[p.name])
        for p in inspect.signature(train_command.train).parameters.values()
        if p.name not in NOT_HERE
    ]
    own = [
        ("start_lr", float, 1e-7, "--start-lr", "The lowest lr of the sweep."),
        ("end_lr", float, 10.0, "--end-lr", "The highest lr of the sweep (it stops earlier once the loss blows up)."),
        ("steps", int, 100, "--steps", "How many lrs to try, one optimizer step each (at most one epoch's steps)."),
    ]
    for name, kind, default, flag, text in own:
        option = typer.Option(default, flag, help=text, rich_help_panel=SWEEP)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind))
    return inspect.Signature([p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params])


lr_find.__signature__ = _signature()  # type: ignore[attr-defined]
lr_find.__annotations__ = {}  # typer reads the signature's resolved annotations, not this module's strings
