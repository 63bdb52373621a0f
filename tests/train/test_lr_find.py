"""The learning-rate range test: the sweep, the smoothing, the suggestion, and that nothing is changed after it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_trainer import blobs, make, params

from xnet.data.loader import DataLoader
from xnet.train.lr_find import check_bounds, ema, range_test, smooth, suggest, sweep_lrs


def test_sweep_is_evenly_spaced_in_log_lr():
    lrs = sweep_lrs(1e-4, 1.0, 5)
    assert lrs == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])


def test_the_stopping_average_is_a_bias_corrected_moving_average():
    # beta 0.5: avg 0.5, 1.25, 1.625; corrections 1 - 0.5, 1 - 0.25, 1 - 0.125
    assert ema([1.0, 2.0, 2.0], 0.5) == pytest.approx([1.0, 1.25 / 0.75, 1.625 / 0.875])


def test_smoothing_is_centred_in_log_lr_and_skips_non_finite_losses():
    lrs = [1e-3, 1e-2, 1e-1, 1.0]
    # width 1 decade: the weights of neighbours one decade away are exp(-1/2), two decades exp(-2)
    a, b, c = math.exp(-0.5), math.exp(-2.0), math.exp(-4.5)
    got = smooth(lrs, [1.0, 2.0, 3.0, math.nan], width=1.0)
    assert got[0] == pytest.approx((1.0 + 2.0 * a + 3.0 * b) / (1 + a + b))  # the NaN at 3 decades: no weight
    assert got[1] == pytest.approx((a * 1.0 + 2.0 + a * 3.0) / (1 + 2 * a))
    assert got[3] == pytest.approx((c * 1.0 + b * 2.0 + a * 3.0) / (c + b + a))
    # a straight line stays where it is away from the ends: no lag
    line = smooth(sweep_lrs(1e-6, 1.0, 61), [float(i) for i in range(61)], width=0.2)
    assert line[30] == pytest.approx(30.0)


def test_suggestion_steepest_and_minimum_on_a_known_curve():
    lrs = sweep_lrs(1e-5, 1.0, 51)  # 10 points per decade
    x = np.log10(lrs)
    # a loss falling fastest at lr 1e-3 (a logistic step in log lr), lowest at lr 1e-1, then rising
    curve = 2.0 - 1.5 / (1.0 + np.exp(-3.0 * (x + 3.0))) + np.where(x > -1, 5.0 * (x + 1) ** 2, 0.0)
    got = suggest(lrs, list(curve))
    assert got["steepest"] == pytest.approx(1e-3)
    assert got["minimum"] == pytest.approx(1e-1, rel=0.3)


@pytest.mark.parametrize(
    "start, end, match",
    [
        (1.0, 1e-3, "start_lr must be below end_lr"),
        (0.0, 1.0, "start_lr must be a finite number > 0, got 0.0"),
        (1e-3, -1.0, "end_lr must be a finite number > 0"),
        (1e-3, math.inf, "end_lr must be a finite number > 0"),
    ],
)
def test_bounds_in_the_wrong_order_or_not_positive_are_refused(start, end, match):
    with pytest.raises(ValueError, match=match):
        check_bounds(start, end)


def loader_for(trainer, x, y, batch=16):
    return DataLoader(x, y, batch, trainer.backend, shuffle=True, seed=trainer.seed, drop_last="single")


def test_range_test_restores_everything_so_a_later_fit_is_unchanged(backend):
    x, y = blobs()
    plain, tested = make(backend, dropout=0.2), make(backend, dropout=0.2)
    before = params(tested)
    opt_before = tested.optimizer.state_dict()
    result = range_test(tested, loader_for(tested, x, y), start_lr=1e-4, end_lr=10.0, steps=15)
    assert len(result.lrs) >= 5  # it trained (the weights moved during the sweep, then came back)
    for a, b in zip(params(tested), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert tested.optimizer.lr == opt_before["lr"]
    h1 = plain.fit((x, y), epochs=2, batch_size=32, verbose=0)
    h2 = tested.fit((x, y), epochs=2, batch_size=32, verbose=0)
    assert [r["train_loss"] for r in h1] == [r["train_loss"] for r in h2]
    for a, b in zip(params(plain), params(tested), strict=True):
        np.testing.assert_array_equal(a, b)


def test_range_test_finds_a_working_lr_and_stops_when_the_loss_blows_up(backend):
    x, y = blobs(960)
    t = make(backend)
    result = range_test(t, loader_for(t, x, y), start_lr=1e-5, end_lr=100.0, steps=60)
    assert result.stopped == "diverged" and len(result.lrs) < 60
    assert result.lrs == pytest.approx(sweep_lrs(1e-5, 100.0, 60)[: len(result.lrs)])
    assert min(result.smoothed) < 0.5 * result.smoothed[0]  # the loss did fall on the way
    assert result.candidates["steepest"] < result.suggestion == result.candidates["minimum"]
    # the suggestion trains: a fresh model at that lr learns the blobs in two epochs
    fresh = make(backend, lr=result.suggestion)
    assert fresh.fit((x, y), epochs=2, batch_size=32, verbose=0)[-1]["train_accuracy"] > 0.95
    # past the minimum the loss rose: that is where the sweep stopped
    assert result.smoothed[-1] > min(result.smoothed)
    csv_lines = result.to_csv().splitlines()
    assert csv_lines[0] == "step,lr,loss,smoothed_loss" and len(csv_lines) == len(result.lrs) + 1


def test_range_test_covers_at_most_one_epoch(backend):
    x, y = blobs(96)
    t = make(backend)
    result = range_test(t, loader_for(t, x, y, batch=16), start_lr=1e-5, end_lr=1e-3, steps=100)
    assert len(result.lrs) == 6 and result.stopped == "epoch"
    assert result.lrs[-1] == pytest.approx(1e-3)  # the sweep is spread over the steps there are
