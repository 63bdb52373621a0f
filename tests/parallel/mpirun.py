"""Launch `xnet` under mpiexec from the tests, on a tiny MNIST-shaped data set."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for digitsets
from digitsets import write_digit_set  # noqa: E402

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "mpi_driver.py"
_beside = Path(sys.executable).parent / "mpiexec"
MPIEXEC = str(_beside) if _beside.is_file() else shutil.which("mpiexec")
HAVE_MPI = MPIEXEC is not None and importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(
    not HAVE_MPI, reason='needs mpi4py and mpiexec: pip install "xnet[mpi]" (the dev extra brings both)'
)


@dataclass
class Result:
    code: int
    out: str
    err: str


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "MPI_"))}
    env.update(extra or {})
    return env


def mpiexec(n: int, *args: object, driver: tuple[str, int, int] | None = None, env: dict | None = None,
            timeout: float = 120) -> Result:  # fmt: skip
    """`mpiexec -n N xnet ARGS` (or the probing driver, see mpi_driver.py): exit code, stdout, stderr."""
    program = [sys.executable, "-m", "xnet"]
    if driver is not None:
        program = [sys.executable, str(DRIVER), *map(str, driver), "--"]
    proc = subprocess.run(
        [MPIEXEC, "-n", str(n), *program, *map(str, args)], capture_output=True, text=True, timeout=timeout,
        env=_env(env),
    )  # fmt: skip
    return Result(proc.returncode, proc.stdout, proc.stderr)


def interrupted(n: int, *args: object, ready: Callable[[], bool], timeout: float = 60) -> Result:
    """`mpiexec -n N xnet ARGS`, sent Ctrl-C (SIGINT, which mpiexec hands to every rank) once `ready()` holds."""
    return signalled(n, *args, signum=signal.SIGINT, rank=None, ready=ready, timeout=timeout)


def rank_pids(out: Path) -> dict[int, int]:
    """{rank: pid} of the xnet processes whose command line names `out` (Linux: read from /proc)."""
    found = {}
    for folder in Path("/proc").glob("[0-9]*"):
        try:
            command = (folder / "cmdline").read_bytes().split(b"\0")
            env = (folder / "environ").read_bytes().split(b"\0")
        except OSError:  # ended meanwhile, or another user's
            continue
        if b"xnet" in command and str(out).encode() in command:
            ranks = [v.split(b"=", 1)[1] for v in env if v.startswith(b"PMI_RANK=")]
            if ranks:
                found[int(ranks[0])] = int(folder.name)
    return found


def signalled(n: int, *args: object, signum: int, rank: int | None, ready: Callable[[], bool],
              timeout: float = 60) -> Result:  # fmt: skip
    """`mpiexec -n N xnet ARGS`, sent `signum` once `ready()` holds: to mpiexec (rank None) or to one rank alone."""
    proc = subprocess.Popen([MPIEXEC, "-n", str(n), sys.executable, "-m", "xnet", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(None))  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while not ready() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        if rank is None:
            proc.send_signal(signum)
        else:
            folder = Path(str(args[args.index("--out") + 1]))
            os.kill(rank_pids(folder)[rank], signum)
        out, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    return Result(proc.returncode, out, err)


def mpmd(*commands: list[object], folders: list[Path] | None = None, timeout: float = 120) -> Result:
    """One process per command (mpiexec's `: ` form): rank i runs `python ARGS_i` (in folders[i] if given)."""
    line = [MPIEXEC]
    for i, command in enumerate(commands):
        where = ["-wdir", str(folders[i])] if folders else []
        line += ([":"] if i else []) + ["-n", "1", *where, sys.executable, *map(str, command)]
    proc = subprocess.run(line, capture_output=True, text=True, timeout=timeout, env=_env(None))
    return Result(proc.returncode, proc.stdout, proc.stderr)


def one_process(*args: object, timeout: float = 120) -> Result:
    """`python -m xnet ARGS` on its own, outside mpiexec."""
    proc = subprocess.run([sys.executable, "-m", "xnet", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=_env(None))  # fmt: skip
    return Result(proc.returncode, proc.stdout, proc.stderr)


def digits(folder: Path, n_train: int = 512, n_test: int = 128) -> Path:
    """A tiny MNIST-shaped IDX data set (random images, labels 0-9 in turn)."""
    return write_digit_set(folder, n_train, n_test)


def weights(run: Path) -> dict[str, np.ndarray]:
    """The model weights in a run folder's checkpoint."""
    from xnet.train.checkpoint import load_checkpoint

    return load_checkpoint(run / "model.npz")["trainer"]["model"]


def assert_same_weights(a: Path, b: Path, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """The two runs' weights agree within float tolerance."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_allclose(wa[k], wb[k], rtol=rtol, atol=atol, err_msg=k)


def one_error_line(r: Result, code: int = 2) -> str:
    """The single `xnet: error:` line on stderr, after checking the exit code and that nothing else is there."""
    assert r.code == code, (r.code, r.out, r.err)
    lines = [line for line in r.err.strip().splitlines() if line]
    assert len(lines) == 1, r.err
    assert lines[0].startswith("xnet: error: "), r.err
    return lines[0]
