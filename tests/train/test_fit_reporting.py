"""Trainer.fit: progress shown by default (as the CLI), verbose levels, the History by name, summed losses."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from xnet.losses import CrossEntropy
from xnet.nn import Dense, ReLU, Sequential, build_on
from xnet.optim import L2, SGD
from xnet.train import Trainer
from xnet.train.history import History
from xnet.train.progress import LineReporter, QuietReporter, Reporter, TextBarReporter, reporter_for

N = 96


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, N)
    x = np.eye(3, 4)[y] * 3 + rng.normal(0, 0.5, (N, 4))
    return x.astype(np.float64), y.astype(np.int64)


def make(backend, reduction: str = "mean", lr: float = 0.1, l2: float = 0.0, **kw) -> Trainer:
    with build_on(backend, "float64"):
        backend.rng.seed(0)
        model = Sequential(Dense(4, 8, init="kaiming_uniform"), ReLU(), Dense(8, 3))
        loss = CrossEntropy(reduction=reduction)
    opt = SGD(model.parameters(), lr=lr, regularizers=[L2(l2)] if l2 else None)
    return Trainer(model, loss, opt, backend=backend, **kw)


def test_fit_prints_a_line_per_epoch_by_default_when_output_is_no_terminal(backend, capsys):
    history = make(backend).fit(data(), epochs=2, val=data(1), batch_size=32)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("|")[0].strip() for line in lines] == ["epoch   1", "epoch   2"]
    assert "val loss" in lines[1] and f"{history[1]['train_loss']:.4f}" in lines[1]


def test_verbose_zero_and_a_given_reporter_silence_it(backend, capsys):
    make(backend).fit(data(), epochs=1, verbose=0)
    make(backend, reporter=Reporter()).fit(data(), epochs=1)
    assert capsys.readouterr().out == ""
    # an explicit verbose wins over the trainer's reporter
    make(backend, reporter=Reporter()).fit(data(), epochs=1, verbose=2)
    assert capsys.readouterr().out.startswith("epoch   1 | train loss")


def test_verbose_picks_like_keras(monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    assert type(reporter_for("auto")) is LineReporter
    assert type(reporter_for(1)) is TextBarReporter  # a bar asked for, no terminal: the carriage-return one
    assert type(reporter_for(0)) is QuietReporter and type(reporter_for(2)) is LineReporter
    given = Reporter()
    assert reporter_for(None, given) is given and type(reporter_for(None)) is LineReporter
    import xnet.train.progress as progress

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    assert type(reporter_for("auto")) is TextBarReporter  # a notebook shows a live bar too
    for bad in (3, True, "yes"):
        with pytest.raises(ValueError, match=r"verbose must be 0 \(silent\), 1 \(a progress bar\), 2"):
            reporter_for(bad)


def test_text_bar_redraws_one_line_with_loss_and_throughput():
    out = io.StringIO()
    bar = TextBarReporter(out)
    bar.epoch_start(1, 3, 10)
    bar.steps_done(5, 0.25, 1234.0)
    bar.steps_done(10, 0.125, 2345.0)
    bar.epoch_end({"epoch": 1, "train_loss": 0.125, "train_accuracy": None, "lr": 0.1, "seconds": 1.0})
    text = out.getvalue()
    assert "\repoch 1/3 [###############...............] 5/10 loss 0.2500 1,234 samples/s" in text
    assert "[##############################] 10/10 loss 0.1250 2,345 samples/s" in text
    assert "\n" not in text.rsplit("\r", 1)[0]  # nothing scrolls while the epoch runs
    assert text.endswith("\repoch   1 | train loss 0.1250 | lr 0.1 | 1.0s\n")


def test_history_gives_each_metric_by_name_and_stays_a_list(backend):
    t = make(backend)
    history = t.fit(data(), epochs=3, val=data(1), batch_size=32, verbose=0)
    assert isinstance(history, History) and isinstance(history, list) and history is t.history
    assert history["epoch"] == [1, 2, 3] == [r["epoch"] for r in history]
    assert history["val_loss"] == [r["val_loss"] for r in history] and history[-1]["val_loss"] == history["val_loss"][2]
    assert list(history.history) == history.names() and history.history["train_loss"] == history["train_loss"]
    assert history[1:] == list(history)[1:]
    with pytest.raises(KeyError, match="History: no metric 'test_loss'; recorded: epoch, train_loss"):
        history["test_loss"]
    # a resumed trainer's history comes back as a History
    t2 = make(backend)
    t2.load_state_dict(t.state_dict())
    assert t2.history["epoch"] == [1, 2, 3]


def test_a_summed_loss_is_reported_per_term_with_its_penalty_scaled_alike(backend):
    x, y = data()
    mean = make(backend, "mean", lr=0.0, l2=0.01)  # lr 0: the weights stay, the reports can be compared
    total = make(backend, "sum", lr=0.0, l2=0.01)
    r_mean = mean.fit((x, y), epochs=1, batch_size=32, verbose=0)[0]
    r_sum = total.fit((x, y), epochs=1, batch_size=32, verbose=0)[0]
    penalty = mean.penalty()
    assert penalty > 0 and penalty == total.penalty()
    # the data term reads the same; the penalty weighs 1/32 of itself against a sum over 32 samples
    assert r_sum["train_loss"] - penalty / 32 == pytest.approx(r_mean["train_loss"] - penalty, rel=1e-12)
    assert total.evaluate((x, y)).loss - penalty / 32 == pytest.approx(mean.evaluate((x, y)).loss - penalty, rel=1e-12)


def test_sgd_with_a_summed_loss_follows_the_mean_at_batch_times_the_lr(backend):
    x, y = data()  # 96 samples in batches of 32: every batch full, so every step matches
    h_sum = make(backend, "sum", lr=0.01).fit((x, y), epochs=3, batch_size=32, verbose=0)
    h_mean = make(backend, "mean", lr=0.32).fit((x, y), epochs=3, batch_size=32, verbose=0)
    np.testing.assert_allclose(h_sum["train_loss"], h_mean["train_loss"], rtol=1e-10)
    assert h_sum["train_loss"][2] < h_sum["train_loss"][0]


def test_a_loss_with_reduction_none_is_refused(backend):
    with build_on(backend, "float64"):
        model = Sequential(Dense(4, 3))
        loss = CrossEntropy(reduction="none")
    with pytest.raises(ValueError, match=r"Trainer: the loss CrossEntropy has reduction='none'.*use reduction='mean'"):
        Trainer(model, loss, SGD(model.parameters(), lr=0.1))
    t = make(backend)
    t.loss.reduction = "none"  # changed after the trainer was built
    with pytest.raises(ValueError, match="Trainer.fit: the loss CrossEntropy has reduction='none'"):
        t.fit(data(), epochs=1, verbose=0)
