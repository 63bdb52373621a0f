"""`mpiexec -n 3 xnet compare`: the same table as one process, and a half-done study continues; `xnet info`."""

from __future__ import annotations

import json
import shutil

import pytest
from mpirun import digits, interrupted, mpiexec, needs_mpi, one_process

pytestmark = needs_mpi


def _table(folder):
    """summary.md without its seconds column (timing differs from run to run)."""
    rows = [line.split("|") for line in (folder / "summary.md").read_text().splitlines() if line.startswith("|")]
    seconds = rows[0].index(" seconds ")
    return ["|".join(cells[:seconds] + cells[seconds + 1 :]) for cells in rows]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    data = digits(root / "digits", 256, 64)
    path = root / "study.toml"
    path.write_text(
        f'name = "tiny"\n[base]\ndataset = "idx:{data}"\nhidden = [16]\nepochs = 1\nschedule = "constant"\n'
        '[grid]\nactivation = ["relu", "tanh"]\n'
    )
    return path


@pytest.fixture(scope="module")
def alone(tmp_path_factory, study):
    """The study run by one process: its folder."""
    out = tmp_path_factory.mktemp("alone") / "study"
    r = one_process("compare", study, "--out", out, "-q")
    assert r.code == 0, r.err
    return out


def test_a_study_over_three_ranks_gives_the_table_of_one_process(tmp_path, study, alone):
    spread = mpiexec(3, "compare", study, "--out", tmp_path / "spread")
    assert spread.code == 0, spread.err
    assert _table(tmp_path / "spread") == _table(alone)
    assert spread.out.count("== activation=") == 2  # rank 0 alone prints: one line per run
    assert spread.out.count("# tiny") == 1


def test_a_half_done_study_continues_under_mpiexec(tmp_path, study, alone):
    shutil.copytree(alone, tmp_path / "s")
    shutil.rmtree(tmp_path / "s" / "activation=tanh")  # as if stopped before its last variant
    again = mpiexec(2, "compare", study, "--out", tmp_path / "s")
    assert again.code == 0, again.err
    assert again.out.count("finished earlier, not run again") == 1
    assert "== activation=tanh: epoch   1" in again.out
    assert _table(tmp_path / "s") == _table(alone)


def test_ctrl_c_stops_a_distributed_study_which_then_continues(tmp_path, study):
    from xnet.train.checkpoint import load_checkpoint

    long = tmp_path / "long.toml"
    # batches of 2: an epoch of 128 steps takes tens of ms, so a variant is still training when the
    # other ends its first epoch (at the base's 4 ms an epoch, one could finish all its epochs first).
    long.write_text(study.read_text().replace("epochs = 1", "epochs = 30\nbatch_size = 2"))
    out = tmp_path / "s"
    # ready once both variants have a checkpoint of a finished epoch: a rank that starts later (its
    # first run loads the compiled CPU kernels; on a loaded machine it starts seconds late) may not
    # have finished one when the first has
    r = interrupted(3, "compare", long, "--out", out, ready=lambda: len(list(out.glob("*/model.npz"))) == 2)
    assert r.code == 130, r.err
    assert "xnet: error: interrupted: the running variants saved their checkpoints" in r.err
    saved = {p.parent.name: load_checkpoint(p)["trainer"]["history"] for p in out.glob("*/model.npz")}
    assert saved and all(0 < len(h) < 30 for h in saved.values())
    again = mpiexec(2, "compare", long, "--out", out, "-q")
    assert again.code == 0, again.err
    for name, history in saved.items():  # continued, not restarted: the epochs before Ctrl-C are as they were
        done = json.loads((out / name / "metrics.json").read_text())["epochs"]
        assert len(done) == 30 and done[: len(history)] == history


def test_info_says_mpi_is_here_and_the_world_size_under_mpiexec():
    alone = one_process("info")
    assert alone.code == 0 and "mpi:     mpi4py " in alone.out and "not under mpiexec" in alone.out
    under = mpiexec(2, "info")
    assert under.code == 0, under.err
    assert under.out.count("mpi:     mpi4py") == 1  # rank 0 alone prints
    assert "under mpiexec: 2 ranks, all on this machine" in under.out
