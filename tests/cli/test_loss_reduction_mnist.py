"""Real MNIST: plain SGD on a summed loss follows the mean's curve at batch-size times the learning rate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from clirun import xnet

# 6000 samples in batches of 50: every batch is full, so every step of the two runs is the same step
RUN = ("--limit", "6000", "--batch-size", "50", "--epochs", "3", "--optimizer", "sgd", "--schedule", "constant",
       "--hidden", "64", "--val-split", "0.1", "-q")  # fmt: skip


def _history(out) -> list[dict]:
    return json.loads((out / "metrics.json").read_text())["epochs"]


@pytest.mark.slow
def test_sgd_with_sum_follows_mean_at_n_times_the_lr(mnist_dir, tmp_path):
    runs = {}
    for name, args in (("sum", ("--loss-reduction", "sum", "--lr", "0.002")), ("mean", ("--lr", "0.1")),
                       ("sum-same-lr", ("--loss-reduction", "sum", "--lr", "0.1"))):  # fmt: skip
        r = xnet("train", *RUN, *args, "--out", tmp_path / name)
        assert r.code in (0, 3), r.err  # a sum at the mean's lr takes 50x the steps and may diverge
        runs[name] = _history(tmp_path / name) if (tmp_path / name / "metrics.json").exists() else []
    total, mean = runs["sum"], runs["mean"]
    assert len(total) == len(mean) == 3
    for key in ("train_loss", "val_loss", "test_loss"):
        # float32 rounds the two differently; nothing else differs
        np.testing.assert_allclose([e[key] for e in total], [e[key] for e in mean], rtol=2e-3, err_msg=key)
    for key in ("train_accuracy", "val_accuracy", "test_accuracy"):
        np.testing.assert_allclose([e[key] for e in total], [e[key] for e in mean], atol=3e-3, err_msg=key)
    assert mean[-1]["test_accuracy"] > 0.85 and mean[-1]["train_loss"] < mean[0]["train_loss"]
    # the same lr with a sum is another run altogether: 50 times the step
    other = runs["sum-same-lr"]
    assert not other or other[0]["train_loss"] > 2 * mean[0]["train_loss"]
