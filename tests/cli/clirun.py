"""Run the real `xnet` entry point in-process (fast) or as a subprocess, capturing its output."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Result:
    code: int
    out: str
    err: str


def xnet(*args: str) -> Result:
    """Call xnet.cli.main(args) in this process; returns exit code, stdout and stderr."""
    from xnet.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return Result(code, out.getvalue(), err.getvalue())


def xnet_process(*args: str, timeout: float = 300) -> Result:
    """Run `python -m xnet ARGS` as a child process (the console script's code path)."""
    proc = subprocess.run(
        [sys.executable, "-m", "xnet", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def one_line_error(r: Result, code: int = 2) -> str:
    """Assert the result is a one-line error with `code`; return the line."""
    assert r.code == code, (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert "Traceback" not in r.err
    assert lines[0].startswith("xnet: error: ")
    return lines[0]


def xnet_signalled(*args: str, signum: int, ready: Callable[[], bool], timeout: float = 120) -> Result:
    """`python -m xnet ARGS` as a child process, sent `signum` once `ready()` holds (training known to run)."""
    proc = subprocess.Popen([sys.executable, "-m", "xnet", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    return Result(proc.returncode, out, err)


def checkpoint_step(run: Path) -> tuple[int, int, int] | None:
    """(epochs done, steps into the next, steps of the run) of the checkpoint in `run`; None before the first."""
    from xnet.errors import XnetError
    from xnet.train.checkpoint import load_checkpoint

    try:
        trainer = load_checkpoint(run / "model.npz")["trainer"]
    except XnetError:
        return None
    return trainer["epoch"], trainer["step_in_epoch"], trainer["global_step"]
