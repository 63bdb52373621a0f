"""fit's checks before step one run once per run: a loader that check_model passed is not checked again."""

from __future__ import annotations

import numpy as np
from test_trainer import blobs, make

from xnet.data import DataLoader
from xnet.train import preflight
from xnet.train import trainer as trainer_module


def _counting(monkeypatch):
    calls = []
    real = preflight.check_batch_norm_batches

    def spy(model, loader):
        calls.append(loader)
        return real(model, loader)

    monkeypatch.setattr(trainer_module, "check_batch_norm_batches", spy)
    return calls


def test_a_loader_checked_before_fit_is_not_checked_again(backend, monkeypatch):
    calls = _counting(monkeypatch)
    t = make(backend)
    x, y = blobs(64)
    loader = DataLoader(x, y, 16, backend, shuffle=True, seed=0, drop_last="single")
    assert t.check_model(loader) == 3  # as run_training does before it writes anything
    t.fit(loader, epochs=2, verbose=0)
    assert calls == [loader]


def test_fit_checks_a_loader_nobody_checked_once(backend, monkeypatch):
    calls = _counting(monkeypatch)
    t = make(backend)
    x, y = blobs(64)
    t.fit((x, y), epochs=2, batch_size=16, verbose=0)
    assert len(calls) == 1 and np.isfinite(t.history[-1]["train_loss"])
