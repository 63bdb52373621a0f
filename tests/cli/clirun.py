"""Run the real `xnet` entry point in-process (fast) or as a subprocess, capturing its output."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from dataclasses import dataclass


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
