"""Stop signals and checkpoint cadence in the Trainer: SIGTERM as Ctrl-C, periodic mid-epoch checkpoints."""

from __future__ import annotations

import os
import shutil
import signal

import numpy as np
import pytest
from test_trainer import blobs, make, params

from xnet.errors import ConfigError, SignalStop, error_line
from xnet.train import Trainer
from xnet.train.cadence import CheckpointCadence, parse_checkpoint_every
from xnet.train.checkpoint import load_checkpoint, save_checkpoint
from xnet.train.progress import Reporter
from xnet.train.stop_signals import StopRequests, raising_stop_signals

needs_posix_signals = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="SIGHUP and SIGUSR1 are POSIX")


@needs_posix_signals
def test_a_repeated_scheduler_signal_changes_nothing_and_a_second_ctrl_c_interrupts():
    before = signal.getsignal(signal.SIGTERM)
    stop = StopRequests()
    stop.install()
    try:
        signal.raise_signal(signal.SIGTERM)
        assert stop.requested and stop.signum == signal.SIGTERM
        signal.raise_signal(signal.SIGUSR1)  # a launcher delivering another (or the same) signal again
        assert stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # Ctrl-C after a stop request: stop now
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGTERM) == before


@needs_posix_signals
def test_a_signal_ignored_on_start_stays_ignored():
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as `nohup` starts a process
    try:
        stop = StopRequests()
        stop.install()
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        signal.raise_signal(signal.SIGHUP)
        assert not stop.requested
        stop.restore()
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


@needs_posix_signals
def test_outside_training_a_scheduler_signal_is_one_line_and_128_plus_its_number():
    with pytest.raises(SignalStop) as e, raising_stop_signals():
        signal.raise_signal(signal.SIGUSR1)
    assert error_line(e.value) == ("stopped by SIGUSR1", 128 + signal.SIGUSR1)
    assert not isinstance(e.value, Exception)  # like KeyboardInterrupt: `except Exception` does not swallow it


class SignalAt(Reporter):
    """Raises `signum` in this process once: when `steps` steps of epoch `epoch` are done (None: at its end)."""

    def __init__(self, signum: int, epoch: int, steps: int | None):
        self.signum, self.epoch, self.steps, self.current, self.fired = signum, epoch, steps, 0, False

    def _fire(self) -> None:
        self.fired = True
        signal.raise_signal(self.signum)

    def epoch_start(self, epoch, epochs, steps):
        self.current = epoch

    def steps_done(self, step, loss, rate):
        if not self.fired and self.steps is not None and self.current == self.epoch and step >= self.steps:
            self._fire()

    def epoch_end(self, record):
        if not self.fired and self.steps is None and record["epoch"] == self.epoch:
            self._fire()


def test_sigterm_stops_fit_after_the_step_with_a_checkpoint_there(backend, tmp_path):
    # the same stop request as Ctrl-C's, whose resume test_trainer checks equals the uninterrupted run
    t = make(backend, dropout=0.3)
    t.checkpoint_path = tmp_path / "ck.npz"
    t.reporter = SignalAt(signal.SIGTERM, epoch=2, steps=3)
    t.fit(blobs(), epochs=3, batch_size=32)
    assert t.interrupted and t.stop_signal == signal.SIGTERM
    assert (t.epoch, t.step_in_epoch) == (1, 3)
    saved = load_checkpoint(tmp_path / "ck.npz")["trainer"]
    assert (saved["epoch"], saved["step_in_epoch"]) == (1, 3)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # fit put the default back


@needs_posix_signals
@pytest.mark.parametrize(("epoch", "interrupted"), [(1, True), (3, False)])
def test_a_signal_at_an_epochs_end_stops_there_unless_it_was_the_last(backend, tmp_path, epoch, interrupted):
    t = make(backend)
    t.checkpoint_path = tmp_path / "ck.npz"
    t.reporter = SignalAt(signal.SIGUSR1, epoch=epoch, steps=None)
    t.fit(blobs(), epochs=3, batch_size=32)
    assert t.interrupted is interrupted and t.step_in_epoch == 0
    assert t.epoch == (1 if interrupted else 3)
    assert load_checkpoint(tmp_path / "ck.npz")["trainer"]["epoch"] == t.epoch
    assert t.stop_signal == (signal.SIGUSR1 if interrupted else None)


def test_a_second_signal_while_checkpointing_leaves_a_whole_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    save_checkpoint(path, {"step": 1})
    real_fsync = os.fsync
    stop = StopRequests()
    stop.install()
    try:
        stop.request(signal.SIGTERM)

        def fsync_then(signum):
            def fsync(fd):
                signal.raise_signal(signum)  # arrives while the new checkpoint is being written
                real_fsync(fd)

            return fsync

        monkeypatch.setattr(os, "fsync", fsync_then(signal.SIGTERM))
        save_checkpoint(path, {"step": 2})  # a repeated SIGTERM is ignored: the write lands
        assert load_checkpoint(path)["step"] == 2
        monkeypatch.setattr(os, "fsync", fsync_then(signal.SIGINT))
        with pytest.raises(KeyboardInterrupt):
            save_checkpoint(path, {"step": 3})  # Ctrl-C on top: stops at once, the previous checkpoint stays
    finally:
        stop.restore()
    assert load_checkpoint(path)["step"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]  # no temporary file left


GOOD = [(None, None), (500, 500), ("500", 500), (" 10m ", "10m"), ("30s", "30s"), ("1.5h", "1.5h"), ("epoch", None)]
BAD = [0, -5, "0", "10x", "m", "1.5", "-3m", "0s", 2.5, True]


@pytest.mark.parametrize(("spec", "expected"), GOOD)
def test_checkpoint_every_takes_steps_or_a_time(spec, expected):
    assert parse_checkpoint_every(spec) == expected


@pytest.mark.parametrize("spec", BAD, ids=map(repr, BAD))
def test_checkpoint_every_refuses_anything_else(spec):
    with pytest.raises(ConfigError, match=r"checkpoint_every: expected a number of steps \(500\), a time .* got"):
        parse_checkpoint_every(spec)


def test_a_time_cadence_counts_from_the_last_checkpoint():
    now = [0.0]
    cadence = CheckpointCadence("10m", clock=lambda: now[0])
    now[0] = 599.0
    assert not cadence.due(1)
    now[0] = 600.0
    assert cadence.due(2)
    cadence.saved()
    now[0] = 1000.0
    assert not cadence.due(3)


def _saves(monkeypatch, keep: dict[int, str] | None = None) -> list[tuple[int, int]]:
    """(global step, step in epoch) of every checkpoint the Trainer writes; copies the file at the steps in `keep`."""
    seen: list[tuple[int, int]] = []
    real = Trainer.save

    def save(self, path):
        real(self, path)
        if path is not None and path == self.checkpoint_path:
            seen.append((self.global_step, self.step_in_epoch))
            if keep and self.global_step in keep:
                shutil.copy(path, keep[self.global_step])

    monkeypatch.setattr(Trainer, "save", save)
    return seen


def test_checkpoints_every_n_steps_of_the_run_and_at_each_epochs_end(backend, tmp_path, monkeypatch):
    x, y = blobs()  # 240 samples in batches of 32: 8 steps an epoch
    full = make(backend, dropout=0.3)
    full.fit((x, y), epochs=3, batch_size=32)
    saves = _saves(monkeypatch, keep={12: str(tmp_path / "at12.npz")})
    m = make(backend, dropout=0.3)
    t = Trainer(m.model, m.loss, m.optimizer, None, backend, log_every=3, checkpoint_path=tmp_path / "ck.npz",
                checkpoint_every=3)  # fmt: skip
    t.fit((x, y), epochs=3, batch_size=32)
    # every multiple of 3 (a hard kill loses at most 3 steps), the epochs' ends (8, 16, 24) too
    assert saves == [(3, 3), (6, 6), (8, 0), (9, 1), (12, 4), (15, 7), (16, 0), (18, 2), (21, 5), (24, 0)]
    for a, b in zip(params(full), params(t), strict=True):  # writing checkpoints changed nothing
        np.testing.assert_array_equal(a, b)
    resumed = make(backend, dropout=0.3)  # as after a SIGKILL just past step 12
    resumed.load_state_dict(load_checkpoint(tmp_path / "at12.npz")["trainer"])
    assert (resumed.epoch, resumed.step_in_epoch) == (1, 4)
    resumed.fit((x, y), epochs=3, batch_size=32)
    for a, b in zip(params(full), params(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]


def test_a_time_cadence_checkpoints_once_the_time_has_passed(backend, tmp_path, monkeypatch):
    saves = _saves(monkeypatch)
    t = make(backend)
    t.checkpoint_path = tmp_path / "ck.npz"
    # a clock at which each step takes 10 s: with "25s", the step that starts 30 s after a checkpoint writes one
    t.cadence = CheckpointCadence("25s", clock=lambda: 10.0 * t.global_step)
    t.fit(blobs(), epochs=2, batch_size=32)
    assert saves == [(4, 4), (8, 0), (12, 4), (16, 0)]


def test_without_a_checkpoint_path_nothing_is_written_whatever_the_cadence(backend, monkeypatch):
    saves = _saves(monkeypatch)
    t = make(backend)
    t.cadence = CheckpointCadence(2)
    t.fit(blobs(), epochs=1, batch_size=32)
    assert saves == []
