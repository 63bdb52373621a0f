"""PlateauSchedule: the reduce-on-plateau rules, step by step, against values worked out by hand."""

from __future__ import annotations

import json
import math

import pytest

from xnet.optim.plateau import PlateauSchedule


def lrs(schedule: PlateauSchedule, values: list[float]) -> list[float]:
    """The lr after each epoch's update."""
    out = []
    for v in values:
        schedule.update(v)
        out.append(schedule.lr_at(0))
    return out


def test_min_rel_drops_after_patience_plus_one_bad_epochs():
    s = PlateauSchedule(1.0, patience=2, factor=0.5)
    # best 1.0 at epoch 1; epochs 2, 3, 4 do not improve (bad 1, 2, 3 > 2): the lr halves after epoch 4
    assert lrs(s, [1.0, 1.0, 1.0, 1.0]) == [1.0, 1.0, 1.0, 0.5]
    # the count restarts: three more bad epochs for the next drop
    assert lrs(s, [1.0, 1.0, 1.0]) == [0.5, 0.5, 0.25]


def test_rel_threshold_needs_a_relative_gain():
    s = PlateauSchedule(1.0, patience=0, factor=0.1, threshold=0.1)
    s.update(10.0)  # best 10
    # 9.5 is not < 10 * (1 - 0.1) = 9: a bad epoch, and patience 0 drops at once
    assert s.update(9.5) is True and s.lr_at(7) == pytest.approx(0.1)
    assert s.update(8.9) is False and s.lr_at(7) == pytest.approx(0.1)  # 8.9 < 9: improves


def test_abs_threshold_and_max_mode():
    s = PlateauSchedule(1.0, monitor="val_accuracy", patience=0, factor=0.5, threshold=0.01, threshold_mode="abs")
    assert s.mode == "max"
    s.update(0.90)
    assert s.update(0.905) is True  # not > 0.90 + 0.01
    assert s.update(0.92) is False  # > 0.91: improves, best 0.92
    assert s.lr_at(0) == 0.5


def test_cooldown_holds_off_bad_epochs():
    s = PlateauSchedule(1.0, patience=0, factor=0.5, cooldown=2)
    # epoch 2 drops (cooldown 2 starts); epochs 3 and 4 are in cooldown (no bad epochs);
    # epoch 5 is bad again and drops
    assert lrs(s, [1.0, 2.0, 2.0, 2.0, 2.0]) == [1.0, 0.5, 0.5, 0.5, 0.25]


def test_min_lr_floor_and_eps():
    s = PlateauSchedule(1.0, patience=0, factor=0.1, min_lr=0.05)
    assert lrs(s, [1.0, 1.0, 1.0, 1.0]) == [1.0, pytest.approx(0.1), 0.05, 0.05]


def test_nan_counts_as_a_bad_epoch():
    s = PlateauSchedule(1.0, patience=1, factor=0.5)
    assert lrs(s, [1.0, math.nan, math.nan]) == [1.0, 1.0, 0.5]


def test_epoch_end_reads_the_monitor_and_refuses_a_missing_one():
    s = PlateauSchedule(1.0, monitor="train_loss", patience=0, factor=0.5)
    s.epoch_end({"epoch": 1, "train_loss": 1.0})
    assert s.epoch_end({"epoch": 2, "train_loss": 1.0}) is True
    with pytest.raises(ValueError, match="val_loss.*validation split"):
        PlateauSchedule(1.0).epoch_end({"epoch": 1, "train_loss": 1.0})


def test_state_dict_round_trips_through_json_and_continues_exactly():
    values = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85]
    whole = PlateauSchedule(0.1, patience=1, factor=0.5, cooldown=1)
    expected = lrs(whole, values)
    first = PlateauSchedule(0.1, patience=1, factor=0.5, cooldown=1)
    got = lrs(first, values[:4])
    second = PlateauSchedule(0.1, patience=1, factor=0.5, cooldown=1)
    second.load_state_dict(json.loads(json.dumps(first.state_dict())))
    got += lrs(second, values[4:])
    assert got == expected
    assert expected[-1] < 0.1  # the sequence does drop, so the comparison means something


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"factor": 1.0}, "factor must be < 1"),
        ({"factor": 0}, "factor must be a finite number > 0"),
        ({"patience": -1}, "patience must be an int >= 0"),
        ({"cooldown": 1.5}, "cooldown must be an int >= 0"),
        ({"mode": "up"}, "mode must be auto, min or max"),
        ({"threshold_mode": "pct"}, "threshold_mode must be rel or abs"),
        ({"monitor": "loss"}, "monitor must be one of"),
        ({"min_lr": -1.0}, "min_lr must be a finite number >= 0"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PlateauSchedule(0.1, **kwargs)


def test_config_lists_the_constructor_arguments():
    cfg = PlateauSchedule(0.1, patience=3).config()
    assert cfg["type"] == "plateau" and cfg["lr"] == 0.1 and cfg["patience"] == 3 and cfg["monitor"] == "val_loss"
