"""The CLI side of callbacks: best.npz in every run and `xnet evaluate --best`, the live history.csv across
--resume, and `xnet lr-find`."""

from __future__ import annotations

import csv

import pytest
from clirun import one_line_error, xnet

from xnet.train import load_checkpoint

QUICK = ("--limit", "600", "--hidden", "16", "--batch-size", "32", "--schedule", "constant", "-q")


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_best_npz_in_every_run_and_evaluate_best(mnist_dir, tmp_path):
    out = tmp_path / "run"
    r = xnet("train", *QUICK, "--epochs", "3", "--out", out)  # no validation split, no early stopping
    assert r.code == 0, r.err
    losses = [float(row["train_loss"]) for row in rows(out / "history.csv")]
    best_epoch = losses.index(min(losses)) + 1
    assert load_checkpoint(out / "best.npz")["trainer"]["epoch"] == best_epoch
    last = xnet("evaluate", out, "--json")
    best = xnet("evaluate", out, "--best", "--json")
    assert last.code == 0 and best.code == 0, (last.err, best.err)
    assert '"checkpoint": "' + str(out / "best.npz") in best.out
    assert '"checkpoint": "' + str(out / "model.npz") in last.out
    (out / "best.npz").unlink()
    line = one_line_error(xnet("evaluate", out, "--best"))
    assert f"--best: no best.npz in {out} (it holds model.npz)" in line


def test_history_csv_continues_on_resume(mnist_dir, tmp_path):
    out = tmp_path / "run"
    assert xnet("train", *QUICK, "--epochs", "2", "--out", out).code == 0
    first = rows(out / "history.csv")
    r = xnet("train", "--resume", "--epochs", "3", "--out", out, "-q")
    assert r.code == 0, r.err
    after = rows(out / "history.csv")
    assert [row["epoch"] for row in after] == ["1", "2", "3"]
    assert after[:2] == first


def test_lr_find_writes_its_sweep_and_prints_a_suggestion(mnist_dir, tmp_path):
    out = tmp_path / "sweep"
    r = xnet("lr-find", *QUICK, "--steps", "15", "--start-lr", "1e-5", "--end-lr", "1", "--out", out)
    assert r.code == 0, r.err
    table = rows(out / "lr_find.csv")
    assert len(table) == 15 and float(table[0]["lr"]) == pytest.approx(1e-5) and float(table[-1]["lr"]) == 1.0
    suggested = float(r.out.split("suggested peak lr ")[1].split()[0])
    smoothed = [float(row["smoothed_loss"]) for row in table]
    lowest = float(table[smoothed.index(min(smoothed))]["lr"])
    assert suggested == pytest.approx(lowest, rel=1e-2)  # the printed value is the lowest smoothed loss's lr
    assert not (out / "model.npz").exists()  # a sweep measures, it saves no model


@pytest.mark.parametrize(
    "bounds, expected",
    [
        (("--start-lr", "1", "--end-lr", "0.01"), "--start-lr must be below --end-lr (the sweep rises)"),
        (("--start-lr", "0"), "--start-lr must be a finite number > 0, got 0.0"),
        (("--end-lr", "-2"), "--end-lr must be a finite number > 0, got -2.0"),
        (("--steps", "1"), "--steps must be at least 2"),
    ],
)
def test_lr_find_refuses_bad_bounds_in_one_line(bounds, expected, tmp_path):
    line = one_line_error(xnet("lr-find", *bounds, "--out", tmp_path / "never"))
    assert expected in line
    assert not (tmp_path / "never").exists()


# every epoch after the first is a plateau of train_loss (no loss beats the best by 100): the lr halves after each
PLATEAU = ("--schedule", "plateau", "--monitor", "train_loss", "--patience", "0", "--threshold", "100",
           "--threshold-mode", "abs", "--gamma", "0.5")  # fmt: skip


def test_plateau_schedule_resumes_exactly(mnist_dir, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert xnet("train", *QUICK, *PLATEAU, "--epochs", "3", "--out", whole).code == 0
    assert xnet("train", *QUICK, *PLATEAU, "--epochs", "2", "--out", parts).code == 0
    r = xnet("train", "--resume", "--epochs", "3", "--out", parts, "-q")
    assert r.code == 0, r.err
    a, b = rows(whole / "history.csv"), rows(parts / "history.csv")
    assert [float(row["lr"]) for row in a] == pytest.approx([0.001, 0.001, 0.0005])  # a drop after epoch 2
    assert [(row["lr"], row["train_loss"], row["test_loss"]) for row in a] == [
        (row["lr"], row["train_loss"], row["test_loss"]) for row in b
    ]


@pytest.mark.parametrize(
    "flags, expected",
    [
        (("--schedule", "plateau"), "schedule plateau: lowers the lr when val_loss stops improving, but there is no "
         "validation split"),
        (("--schedule", "plateau", "--monitor", "val_f1"), "monitor: unknown value 'val_f1'"),
        (("--schedule", "plateau", "--monitor", "train_loss", "--patience", "-1"), "patience: expected a whole number"),
        (("--patience", "3"), "no effect with schedule 'cosine' (only plateau use patience)"),
    ],
)  # fmt: skip
def test_plateau_bad_input_is_one_line(flags, expected, tmp_path):
    assert expected in one_line_error(xnet("train", *flags, "--out", tmp_path / "never"))


CALLBACKS = '''
from xnet.train import Callback

class Count(Callback):
    def on_epoch_end(self, epoch, logs=None):
        print(f"counted epoch {epoch}, loss {logs['train_loss']:.3f}")

class Boom(Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyError("f1")

NUMBER = 3
'''


def test_callbacks_by_import_path(mnist_dir, tmp_path, monkeypatch):
    (tmp_path / "mycallbacks.py").write_text(CALLBACKS)
    monkeypatch.chdir(tmp_path)  # a module of the current folder, as `python -m` finds it
    r = xnet("train", *QUICK, "--epochs", "2", "--callbacks", "mycallbacks:Count", "--out", tmp_path / "run")
    assert r.code == 0, r.err
    assert "counted epoch 1" in r.out and "counted epoch 2" in r.out
    line = one_line_error(xnet("train", *QUICK, "--callbacks", "mycallbacks:NUMBER", "--out", tmp_path / "no"))
    assert "callback 'mycallbacks:NUMBER' is not callable: got int 3" in line
    assert not (tmp_path / "no").exists()
    line = one_line_error(xnet("train", *QUICK, "--callbacks", "mycallbacks:Boom", "--out", tmp_path / "boom"), 1)
    assert line.endswith("callback Boom failed in on_epoch_end: KeyError: 'f1'; training stopped (the last "
                         "checkpoint written is kept)")  # fmt: skip
