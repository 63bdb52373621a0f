"""SIGTERM under `mpiexec -n 2`: whichever process receives it, every rank stops after the same step,
rank 0 writes the checkpoint and the run's files, all exit 143, and the run resumes exactly."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from mpirun import digits, mpiexec, needs_mpi, one_error_line, signalled, weights

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))  # for clirun's checkpoint reader
from clirun import checkpoint_step  # noqa: E402

pytestmark = [
    needs_mpi,
    pytest.mark.skipif(not Path("/proc/self/environ").is_file(), reason="finds the ranks' processes in /proc (Linux)"),
]

# batches of 2 (one sample a rank): an epoch of 384 steps, so the signal sent once the first mid-epoch
# checkpoint is seen (step 50) lands in that epoch
RUN = ("--hidden", "16", "--dropout", "0.1", "--batch-size", "2", "--epochs", "2", "-q")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return f"idx:{digits(tmp_path_factory.mktemp('preempt') / 'digits', n_train=768, n_test=128)}"


@pytest.fixture(scope="module")
def full(data, tmp_path_factory):
    """The uninterrupted 2-rank run's folder."""
    out = tmp_path_factory.mktemp("full") / "run"
    r = mpiexec(2, "train", "--dataset", data, *RUN, "--out", out)
    assert r.code == 0, r.err
    return out


@pytest.mark.parametrize("rank", [1, None], ids=["rank 1 alone", "mpiexec"])
def test_sigterm_to_one_rank_stops_every_rank_after_the_same_step_and_resumes_exactly(data, full, tmp_path, rank):
    out = tmp_path / "run"

    def mid_epoch():
        at = checkpoint_step(out)
        return at is not None and at[0] == 0 and at[1] >= 50

    r = signalled(2, "train", "--dataset", data, *RUN, "--checkpoint-every", "50", "--out", out,
                  signum=signal.SIGTERM, rank=rank, ready=mid_epoch)  # fmt: skip
    assert r.code == 143, (r.out, r.err)
    said = [line for line in r.out.splitlines() if "SIGTERM" in line]
    assert len(said) == 1 and said[0].startswith("stopped by SIGTERM: checkpoint saved to"), r.out  # rank 0 alone
    assert "Traceback" not in r.err and "error" not in r.err, r.err
    epoch, step, _ = checkpoint_step(out)
    assert epoch == 0 and step > 0  # mid-epoch
    assert json.loads((out / "metrics.json").read_text())["stop_signal"] == "SIGTERM"
    r = mpiexec(2, "train", "--resume", "-q", "--out", out)
    assert r.code == 0, r.err
    done, uninterrupted = (json.loads((run / "metrics.json").read_text()) for run in (out, full))
    assert [e["train_loss"] for e in done["epochs"]] == [e["train_loss"] for e in uninterrupted["epochs"]]
    assert done["test_loss"] == uninterrupted["test_loss"]
    for name, value in weights(full).items():
        np.testing.assert_array_equal(weights(out)[name], value, err_msg=name)


def test_resume_if_exists_under_mpiexec_starts_then_refuses_another_configuration_with_one_line(data, tmp_path):
    out = tmp_path / "run"
    job = ("train", "--dataset", data, "--hidden", "8", "--batch-size", "64", "--epochs", "1", "-q",
           "--resume-if-exists", "--out", out)  # fmt: skip
    assert mpiexec(2, *job).code == 0
    line = one_error_line(mpiexec(2, *job, "--seed", "1"))  # every rank finds the same: rank 0 says it once
    assert line == (
        f"xnet: error: --resume-if-exists: {out} holds a run of another configuration (seed = 0 there, 1 here); "
        "choose another --out, or pass --overwrite to replace it"
    )
