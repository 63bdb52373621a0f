"""Faults under `mpiexec -n 2`: bad input refused before training, a failing, killed or hung rank stops the
job (one line from rank 0, non-zero exit, no hang), and Ctrl-C checkpoints and exits 130."""

from __future__ import annotations

import numpy as np
import pytest
from mpirun import digits, interrupted, mpiexec, mpmd, needs_mpi, one_error_line, weights

from xnet.train.checkpoint import load_checkpoint

pytestmark = needs_mpi

RUN = ("--hidden", "16", "--schedule", "constant", "--batch-size", "128", "-q")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return f"idx:{digits(tmp_path_factory.mktemp('faults') / 'digits')}"


def _train(data, out, *more):
    return ["-m", "xnet", "train", "--dataset", data, *RUN, *more, "--out", out]


@pytest.mark.parametrize(
    "batch, expected",
    [("127", "--batch-size 127 is not divisible by the 2 ranks"), ("1", "fewer ranks than the 1 samples")],
)
def test_a_batch_that_does_not_split_evenly_is_refused_before_training(tmp_path, data, batch, expected):
    r = mpiexec(2, "train", "--dataset", data, *RUN, "--batch-size", batch, "--out", tmp_path / "run")
    assert expected in one_error_line(r)
    assert not (tmp_path / "run").exists()


def test_per_rank_batch_norm_on_one_sample_a_rank_is_refused_before_training(tmp_path, data):
    r = mpiexec(2, "train", "--dataset", data, *RUN, "--batch-norm", "--batch-size", "2", "--out", tmp_path / "run")
    line = one_error_line(r)
    assert line.startswith("xnet: error: --batch-size 2 on 2 ranks gives each rank 1 sample per step, and "
                           "BatchNorm1D(num_features=16) normalises")  # fmt: skip
    assert line.endswith("pass --sync-batch-norm, or a --batch-size of at least 4")
    assert not (tmp_path / "run").exists()
    # synchronised, the statistics are the global batch's 2 samples: it trains
    synced = mpiexec(2, "train", "--dataset", data, *RUN, "--batch-norm", "--batch-size", "2", "--sync-batch-norm",
                     "--limit", "24", "--epochs", "1", "--out", tmp_path / "synced")  # fmt: skip
    assert synced.code == 0, synced.err


def test_ranks_given_other_configurations_or_versions_are_refused(tmp_path, data):
    other_lr = mpmd(_train(data, tmp_path / "a"), _train(data, tmp_path / "a", "--lr", "0.01"))
    assert "rank 1 was given another configuration than rank 0 (lr = 0.01 there, None on rank 0)" in \
        one_error_line(other_lr)  # fmt: skip
    newer = "import sys, xnet; xnet.__version__ = '9.9'; from xnet.cli import main; main(sys.argv[1:])"
    other_version = mpmd(_train(data, tmp_path / "b"), ["-c", newer, *_train(data, tmp_path / "b")[2:]])
    assert "rank 1 runs xnet 9.9 and rank 0 xnet" in one_error_line(other_version)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_data_file_missing_on_one_machine_stops_the_job_naming_its_rank(tmp_path):
    here, there = tmp_path / "here", tmp_path / "there"  # two "machines": the same command in two folders
    digits(here / "digits", 256, 64)
    (there / "digits").mkdir(parents=True)
    command = _train("idx:digits", "run")
    r = mpmd(command, command, folders=[here, there])
    assert one_error_line(r).startswith("xnet: error: rank 1 of 2: digits: expected train-images-idx3-ubyte.gz")
    assert not (here / "run").exists()


def test_a_rank_that_fails_in_training_stops_the_job_with_one_line_naming_it(tmp_path, data):
    out = tmp_path / "run"
    r = mpiexec(2, "train", "--dataset", data, *RUN, "--epochs", "3", "--out", out, driver=("memory", 1, 6))
    line = one_error_line(r)
    assert line.startswith("xnet: error: rank 1 of 2: out of memory while training with batch size 128 on ")
    assert "(Unable to allocate 3.20 GiB (simulated))" in line
    assert load_checkpoint(out / "model.npz")["trainer"]["epoch"] == 1  # step 6 is in epoch 2 (4 steps each)


def test_a_killed_rank_stops_the_job_and_the_last_checkpoint_stays_whole(tmp_path, data):
    out = tmp_path / "run"
    r = mpiexec(2, "train", "--dataset", data, *RUN, "--epochs", "3", "--out", out, driver=("kill", 1, 6), timeout=60)
    assert r.code != 0  # mpiexec names the killed process and its signal; no rank is left waiting
    assert load_checkpoint(out / "model.npz")["trainer"]["epoch"] == 1
    assert all(np.isfinite(w).all() for w in weights(out).values())


def test_a_rank_that_hangs_makes_the_others_give_up_after_the_timeout(tmp_path, data):
    r = mpiexec(2, "train", "--dataset", data, *RUN, "--epochs", "3", "--out", tmp_path / "run",
                driver=("stop", 1, 2), env={"XNET_MPI_TIMEOUT": "2"}, timeout=60)  # fmt: skip
    line = one_error_line(r)
    assert line.startswith("xnet: error: rank 0 of 2: no answer from the other ranks for 2 s while ")
    assert "XNET_MPI_TIMEOUT" in line


def test_ctrl_c_under_mpiexec_saves_a_checkpoint_that_resumes(tmp_path, data):
    out = tmp_path / "run"
    r = interrupted(2, *_train(data, out, "--epochs", "500")[2:], ready=(out / "model.npz").exists)
    assert r.code == 130, r.err
    assert "interrupted: checkpoint saved to" in r.out and r.out.count("interrupted") == 1
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # nothing half-written
    saved = load_checkpoint(out / "model.npz")["trainer"]
    assert 0 < saved["epoch"] < 500
    r = mpiexec(2, "train", "--resume", "--out", out, "--epochs", str(saved["epoch"] + 1), "-q")
    assert r.code == 0, r.err
    assert load_checkpoint(out / "model.npz")["trainer"]["epoch"] == saved["epoch"] + 1
