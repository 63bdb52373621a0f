"""`xnet compare` under mpiexec: the study's runs spread over the ranks with mpi4py.futures.

Rank 0 plans and checks the study as one process would, then hands every run still to do to the
next free rank (mpi4py.futures' MPICommExecutor: rank 0 is the pool's master and trains nothing,
ranks 1..N-1 are its workers). Each run is an ordinary single-process run writing its own folder,
so a study interrupted or stopped half-way continues where it stopped when run again, with any
number of ranks. Rank 0 alone prints and writes the summary, rewritten whenever a variant's runs
are all done, in the study's order: the same table as one process gives.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any

from xnet.config import RunConfig
from xnet.errors import error_line
from xnet.parallel.agree import agreement
from xnet.parallel.world import World
from xnet.study.file import Study
from xnet.study.runner import Run, StudyInterrupted, prepare_study, train_variant
from xnet.study.summary import summarize, write_summary
from xnet.train.progress import Reporter

_interrupted = False  # a worker saw Ctrl-C while it waited for work
_cache: Any = None  # a worker's DataCache: its runs on the same data share one copy


def _note_interrupt(signum: int, frame: Any) -> None:
    global _interrupted
    _interrupted = True


def train_run(cfg: RunConfig, folder: Path) -> dict[str, Any]:
    """On a worker: train (or continue) one run of a study; returns its metrics (a diverged run's status)."""
    global _cache
    from xnet.runs.data import DataCache

    if _interrupted:  # Ctrl-C reached this rank before the run did: leave it for the next `xnet compare`
        raise StudyInterrupted("interrupted before this run started")
    if _cache is None:
        _cache = DataCache()
    return train_variant(cfg, folder, Reporter(), _cache)


def run_study_mpi(
    world: World,
    study: Study,
    out_dir: Path,
    repeat: int = 1,
    overrides: dict[str, Any] | None = None,
    finished: Callable[[str, int, dict[str, Any]], None] | None = None,
    skipped: Callable[[str, int], None] | None = None,
    written: Callable[[list[str]], None] | None = None,
) -> list[dict[str, Any]] | None:
    """run_study (xnet/study/runner.py) over the ranks; returns the rows on rank 0, None on the others.

    `finished(name, k, metrics)` is called on rank 0 as each run ends, `skipped` and `written` as
    in run_study. A run that fails stops the job with its one line; Ctrl-C lets the running runs
    save their checkpoints and raises StudyInterrupted on rank 0.
    """
    from mpi4py.futures import MPICommExecutor

    out_dir, overrides = Path(out_dir), dict(overrides or {})
    plan: list[list[Run]] = []
    with agreement(world, "checking the study"):
        if world.is_root:
            plan = prepare_study(study, out_dir, repeat, overrides)
    # workers: a Ctrl-C while waiting is noted, not raised (a run in progress has the trainer's handler)
    previous = signal.signal(signal.SIGINT, _note_interrupt)
    try:
        with MPICommExecutor(world.comm, root=0) as executor:
            if executor is None:
                return None  # a worker: it ran what rank 0 sent until rank 0 closed the pool
            return _hand_out(world, study, plan, executor, out_dir, overrides, finished, skipped, written)
    finally:
        signal.signal(signal.SIGINT, previous)


def _hand_out(
    world: World,
    study: Study,
    plan: list[list[Run]],
    executor: Any,
    out_dir: Path,
    overrides: dict[str, Any],
    finished: Any,
    skipped: Any,
    written: Any,
) -> list[dict[str, Any]]:
    """On rank 0: submit every run still to do, gather the results, rewrite the summary per finished variant."""
    results: dict[tuple[int, int], dict[str, Any]] = {}
    pending: dict[Future, tuple[int, int]] = {}
    for v, runs in enumerate(plan):
        for run in runs:
            if run.finished is not None:
                results[v, run.k] = run.finished
                if skipped is not None:
                    skipped(run.variant.name, run.k)
            else:
                pending[executor.submit(train_run, run.cfg, run.folder)] = (v, run.k)
    rows: list[dict[str, Any]] = []
    stopping = False
    while pending:
        if _interrupted and not stopping:  # rank 0's own Ctrl-C: runs not started are left for later
            stopping = True
            for future in pending:
                future.cancel()
        done, _ = wait(list(pending), timeout=0.2, return_when=FIRST_COMPLETED)
        for future in done:
            v, k = pending.pop(future)
            if future.cancelled():
                continue
            error = future.exception()
            if isinstance(error, StudyInterrupted):
                stopping = True
                continue
            if error is not None:
                message, code = error_line(error) or (f"{type(error).__name__}: {error}", 1)
                world.abort(message, code)  # the runs in progress keep their last checkpoints
            results[v, k] = future.result()
            if finished is not None:
                finished(plan[v][0].variant.name, k, results[v, k])
            if all((v, r.k) in results for r in plan[v]):  # the variant's last run: its row is complete
                rows = _write_done(study, plan, results, out_dir, overrides, written)
    if stopping:
        error = StudyInterrupted(
            f"interrupted: the running variants saved their checkpoints in {out_dir}; "
            "run the same `xnet compare` again (with any number of ranks) to continue where it stopped"
        )
        error.every_rank = True  # rank 0 alone says it; the workers stopped cleanly
        raise error
    return rows or _write_done(study, plan, results, out_dir, overrides, written)


def _write_done(
    study: Study,
    plan: list[list[Run]],
    results: dict[tuple[int, int], dict[str, Any]],
    out_dir: Path,
    overrides: dict[str, Any],
    written: Any,
) -> list[dict[str, Any]]:
    """Summary rows of the variants whose runs are all done, in the study's order; the summary files rewritten."""
    rows = [
        summarize(runs[0].variant.name, [results[v, r.k] for r in runs], [r.folder for r in runs])
        for v, runs in enumerate(plan)
        if all((v, r.k) in results for r in runs)
    ]
    if rows:
        files = write_summary(study, rows, out_dir, overrides)
        if written is not None:
            written(files)
    return rows


__all__ = ["run_study_mpi", "train_run"]
