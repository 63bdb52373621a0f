"""Finding the MPI world: from mpiexec's environment only, and mpi4py imported only under mpiexec."""

from __future__ import annotations

import subprocess
import sys

import pytest

from xnet.parallel import world


@pytest.mark.parametrize(
    "env, size, rank",
    [
        ({}, None, None),
        ({"PMI_SIZE": "4", "PMI_RANK": "3"}, 4, 3),  # MPICH, Intel MPI
        ({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"}, 2, 0),  # Open MPI
        ({"PMI_SIZE": "x"}, None, None),
    ],
)
def test_the_launchers_environment_gives_size_and_rank(monkeypatch, env, size, rank):
    for name in world.SIZE_VARS + world.RANK_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert world.launched_size() == size and world.launched_rank() == rank


def test_one_process_or_mpiexec_n_1_is_no_world(monkeypatch):
    for name in world.SIZE_VARS:
        monkeypatch.delenv(name, raising=False)
    assert world.current_world() is None
    monkeypatch.setenv("PMI_SIZE", "1")
    assert world.current_world() is None


@pytest.mark.parametrize("value, seconds", [("30", 30.0), ("0.5", 0.5), ("-1", 600.0), ("soon", 600.0), ("", 600.0)])
def test_the_timeout_comes_from_the_environment(monkeypatch, value, seconds):
    monkeypatch.setenv("XNET_MPI_TIMEOUT", value)
    assert world.timeout_seconds() == seconds


def test_training_outside_mpiexec_never_imports_mpi4py(tmp_path):
    code = (
        "import sys; from xnet.cli import main\n"
        "try:\n"
        f"    main(['train', '--dataset', 'sine', '--loss', 'mse', '--hidden', '4', '--epochs', '1', '-q',"
        f" '--out', {str(tmp_path / 'run')!r}])\n"
        "finally:\n"
        "    print('mpi4py imported' if 'mpi4py' in sys.modules else 'no mpi4py')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("no mpi4py")
