"""`xnet train` under a scheduler: SIGTERM as Ctrl-C, --checkpoint-every against SIGKILL, --resume-if-exists."""

from __future__ import annotations

import json
import signal

import pytest
from clirun import checkpoint_step, one_line_error, xnet, xnet_signalled
from digitsets import write_digit_set

from xnet.train.checkpoint import load_checkpoint

# 3000 samples in batches of 2: an epoch of 1500 steps takes about a second, so a signal sent once the
# first mid-epoch checkpoint is seen (step 100) lands in that epoch, not after it
RUN = ("--hidden", "16", "--dropout", "0.1", "--batch-size", "2", "--epochs", "2", "-q")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return f"idx:{write_digit_set(tmp_path_factory.mktemp('preempt') / 'digits', 3000, 300)}"


@pytest.fixture(scope="module")
def full(data, tmp_path_factory):
    """The uninterrupted run's metrics.json."""
    out = tmp_path_factory.mktemp("full") / "run"
    r = xnet("train", "--dataset", data, *RUN, "--out", out)
    assert r.code == 0, r.err
    return json.loads((out / "metrics.json").read_text())


def _same_run(out, full):
    done = json.loads((out / "metrics.json").read_text())
    assert not done["interrupted"] and done["epochs_completed"] == 2
    for key in ("test_loss", "test_accuracy", "train_loss"):
        assert done[key] == full[key], key
    assert [r["train_loss"] for r in done["epochs"]] == [r["train_loss"] for r in full["epochs"]]


def _mid_epoch(out, steps):
    """A checkpoint of the first epoch at least `steps` steps in: training is known to be running."""

    def ready():
        at = checkpoint_step(out)
        return at is not None and at[0] == 0 and at[1] >= steps

    return ready


def test_sigterm_mid_epoch_saves_the_run_exits_143_and_resume_equals_uninterrupted(data, full, tmp_path):
    out = tmp_path / "run"
    args = ("train", "--dataset", data, *RUN, "--checkpoint-every", "100", "--out", out)
    r = xnet_signalled(*args, signum=signal.SIGTERM, ready=_mid_epoch(out, 100))
    assert r.code == 143, (r.out, r.err)
    assert r.err == ""  # no traceback, no error line: a stop asked for is no error
    said = [line for line in r.out.splitlines() if "SIGTERM" in line]
    assert len(said) == 1
    assert said[0].startswith(f"stopped by SIGTERM: checkpoint saved to {out / 'model.npz'} (epoch 1, step ")
    assert said[0].endswith(f"resume with: xnet train --resume --out {out}")
    epoch, step, _ = checkpoint_step(out)
    assert epoch == 0 and step > 0  # mid-epoch
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] and metrics["stop_signal"] == "SIGTERM"
    assert (out / "config.toml").is_file() and (out / "history.csv").is_file()
    r = xnet("train", "--resume", "-q", "--out", out)
    assert r.code == 0, r.err
    _same_run(out, full)


def test_after_sigkill_the_checkpoint_every_200_steps_resumes_as_the_uninterrupted_run(data, full, tmp_path):
    out = tmp_path / "run"
    # the job script a scheduler requeues: the same command starts the run, then continues it
    job = ("train", "--dataset", data, *RUN, "--checkpoint-every", "200", "--resume-if-exists", "--out", out)
    r = xnet_signalled(*job, signum=signal.SIGKILL, ready=_mid_epoch(out, 400))
    assert r.code == -signal.SIGKILL
    epoch, step, done = checkpoint_step(out)
    assert done >= 400 and done % 200 == 0  # the last checkpoint is at most 200 steps behind
    assert not (out / "metrics.json").exists()  # a hard kill writes nothing more
    r = xnet(*job)
    assert r.code == 0, r.err
    _same_run(out, full)


def _quick(data, out, *more):
    return ("train", "--dataset", data, "--hidden", "8", "--batch-size", "100", "--schedule", "constant", "-q",
            "--limit", "600", "--out", out, *more)  # fmt: skip


def test_resume_if_exists_starts_in_an_empty_folder_then_continues_and_extends(data, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "slurm-42.out").write_text("a scheduler's log beside the run\n")  # not a run: the folder counts as empty
    r = xnet(*_quick(data, out, "--epochs", "1", "--resume-if-exists"))
    assert r.code == 0, r.err
    first = json.loads((out / "metrics.json").read_text())["epochs"]
    before = (out / "model.npz").read_bytes()
    r = xnet(*_quick(data, out, "--epochs", "1", "--resume-if-exists"))  # requeued after it finished
    assert r.code == 0, r.err
    assert r.out.strip() == f"{out} holds this run, complete (1 epoch): nothing to do (raise --epochs to train on)"
    assert (out / "model.npz").read_bytes() == before
    # epochs may grow, and when to checkpoint change
    r = xnet(*_quick(data, out, "--epochs", "2", "--resume-if-exists", "--checkpoint-every", "5"))
    assert r.code == 0, r.err
    done = json.loads((out / "metrics.json").read_text())["epochs"]
    assert len(done) == 2 and done[0] == first[0]  # continued, not started again
    longer = tmp_path / "longer"
    assert xnet(*_quick(data, longer, "--epochs", "2")).code == 0
    assert load_checkpoint(out / "model.npz")["trainer"]["history"][1]["train_loss"] == (
        json.loads((longer / "metrics.json").read_text())["epochs"][1]["train_loss"]
    )


@pytest.mark.parametrize(
    ("more", "named"),
    [(("--lr", "0.01"), "lr = its default there, 0.01 here"), (("--seed", "3"), "seed = 0 there, 3 here"),
     (("--hidden", "8,8"), "hidden = [8] there, [8, 8] here")],
)  # fmt: skip
def test_resume_if_exists_refuses_a_folder_holding_another_configuration(data, tmp_path, more, named):
    out = tmp_path / "run"
    assert xnet(*_quick(data, out, "--epochs", "1")).code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    line = one_line_error(xnet(*_quick(data, out, "--epochs", "2", "--resume-if-exists", *more)))
    assert line == (
        f"xnet: error: --resume-if-exists: {out} holds a run of another configuration ({named}); "
        "choose another --out, or pass --overwrite to replace it"
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_resume_if_exists_needs_an_out_folder_and_is_one_of_resume_and_overwrite(data, tmp_path):
    line = one_line_error(xnet("train", "--dataset", data, "--resume-if-exists", "-q"))
    assert "--resume-if-exists needs --out DIR" in line
    line = one_line_error(xnet(*_quick(data, tmp_path / "r", "--resume-if-exists", "--overwrite")))
    assert line.endswith("--overwrite and --resume-if-exists each say what to do with the run in --out: pass one of "
                         "them")  # fmt: skip


BAD = ["0", "-5", "10x", "1.5", "m", "0s"]


@pytest.mark.parametrize("value", BAD)
def test_a_bad_checkpoint_cadence_is_one_line_exit_2(tmp_path, value):
    r = xnet("train", "--dataset", "sine", "--loss", "mse", "--epochs", "1", "-q", "--out", tmp_path / "r",
             "--checkpoint-every", value)  # fmt: skip
    line = one_line_error(r)
    assert line == (
        f"xnet: error: checkpoint_every: expected a number of steps (500), a time (30s, 10m, 2h) or 'epoch', "
        f"got {value!r}"
    )
    assert not (tmp_path / "r").exists()


def test_checkpoint_every_in_toml_and_in_xnet_options(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('dataset = "sine"\nloss = "mse"\nepochs = 1\ncheckpoint_every = "10m"\n')
    out = tmp_path / "r"
    r = xnet("train", "--config", cfg, "-q", "--out", out)
    assert r.code == 0, r.err
    assert 'checkpoint_every = "10m"' in (out / "config.toml").read_text()  # the saved config repeats it
    cfg.write_text('dataset = "sine"\nloss = "mse"\nepochs = 1\ncheckpoint_every = 2.5\n')
    assert "'checkpoint_every' has the wrong type" in one_line_error(xnet("train", "--config", cfg, "-q"))
    r = xnet("options", "checkpoint-every")
    assert r.code == 0 and r.out == "option checkpoint_every: read by every run\n"
