"""Learning-rate schedules: lr_at against the formulas, boundaries, factory defaults, bad input."""

from __future__ import annotations

import math

import pytest

from xnet.optim import (
    SCHEDULES,
    ConstantSchedule,
    CosineSchedule,
    CyclicSchedule,
    ExponentialSchedule,
    OneCycleSchedule,
    StepSchedule,
    WarmupSchedule,
    get_schedule,
    step_at_thirds,
    thirds_milestones,
)


def test_constant():
    s = ConstantSchedule(0.3)
    assert [s.lr_at(t) for t in (0, 1, 10**6)] == [0.3, 0.3, 0.3]


def test_step_size():
    s = StepSchedule(1.0, step_size=10, gamma=0.5)
    assert [s.lr_at(t) for t in (0, 9, 10, 19, 20, 35)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]


def test_step_milestones_drop_at_the_milestone():
    s = StepSchedule(0.2, milestones=[5, 8], gamma=0.1)
    got = [s.lr_at(t) for t in (0, 4, 5, 7, 8, 100)]
    assert got == pytest.approx([0.2, 0.2, 0.02, 0.02, 0.002, 0.002], rel=1e-15)


def test_step_at_thirds():
    assert thirds_milestones(300) == [100, 200]
    assert thirds_milestones(10) == [3, 6]
    assert thirds_milestones(2) == [1]
    s = step_at_thirds(0.1, 300)
    assert [s.lr_at(t) for t in (99, 100, 199, 200, 299)] == pytest.approx(
        [0.1, 0.01, 0.01, 0.001, 0.001], rel=1e-15
    )


def test_exponential_per_step_and_per_epoch():
    s = ExponentialSchedule(0.5, gamma=0.9)
    assert s.lr_at(0) == 0.5 and s.lr_at(3) == pytest.approx(0.5 * 0.9**3, rel=1e-15)
    e = ExponentialSchedule(0.5, gamma=0.9, steps_per_epoch=4)
    got = [e.lr_at(t) for t in (0, 3, 4, 7, 8)]
    assert got == pytest.approx([0.5, 0.5, 0.45, 0.45, 0.405], rel=1e-15)


def cosine_ref(lr, total, warmup, floor, t):
    if t < warmup:
        return lr * (t + 1) / warmup
    T = total - warmup
    return floor + 0.5 * (lr - floor) * (1 + math.cos(math.pi * min(t - warmup, T) / T))


def test_cosine_no_warmup():
    s = CosineSchedule(0.1, total_steps=100)
    assert s.lr_at(0) == pytest.approx(0.1, rel=1e-15)
    assert s.lr_at(50) == pytest.approx(0.05, rel=1e-12)  # half-way: the mean
    assert s.lr_at(100) == pytest.approx(0.0, abs=1e-18)
    assert s.lr_at(500) == pytest.approx(0.0, abs=1e-18)  # past the end: stays at the floor
    for t in (1, 17, 99):
        assert s.lr_at(t) == pytest.approx(0.05 * (1 + math.cos(math.pi * t / 100)), rel=1e-12)


def test_cosine_warmup_and_floor():
    s = CosineSchedule(0.1, total_steps=110, warmup_steps=10, floor=0.001)
    assert s.lr_at(0) == pytest.approx(0.01, rel=1e-15)  # first step already trains
    assert s.lr_at(4) == pytest.approx(0.05, rel=1e-15)
    assert s.lr_at(9) == pytest.approx(0.1, rel=1e-15)  # warm-up ends at the peak
    assert s.lr_at(10) == pytest.approx(0.1, rel=1e-15)  # cosine starts from the peak
    assert s.lr_at(60) == pytest.approx(0.001 + 0.5 * 0.099, rel=1e-12)  # T = 100 after warm-up
    assert s.lr_at(110) == pytest.approx(0.001, rel=1e-12)
    for t in (3, 11, 37, 109):
        assert s.lr_at(t) == pytest.approx(cosine_ref(0.1, 110, 10, 0.001, t), rel=1e-12)


def test_cyclic_triangle():
    s = CyclicSchedule(1.0, step_size=4)  # base 0.01, peak 1.0, period 8
    assert s.base_lr == pytest.approx(0.01)
    assert s.lr_at(0) == pytest.approx(0.01)  # trough
    assert s.lr_at(4) == pytest.approx(1.0)  # peak
    assert s.lr_at(8) == pytest.approx(0.01)  # trough
    assert s.lr_at(12) == pytest.approx(1.0)  # peak
    assert s.lr_at(2) == pytest.approx(0.01 + 0.99 * 0.5)
    assert s.lr_at(6) == pytest.approx(0.01 + 0.99 * 0.5)  # falling side
    assert s.lr_at(5) == pytest.approx(0.01 + 0.99 * 0.75)
    c = CyclicSchedule(0.5, step_size=3, base_lr=0.1)
    assert [c.lr_at(t) for t in (0, 3, 6)] == pytest.approx([0.1, 0.5, 0.1])


def onecycle_ref(max_lr, total, pct, div, final_div, step):
    """PyTorch's OneCycleLR (cos, two phases), written out."""
    initial, min_lr = max_lr / div, max_lr / div / final_div
    phases = [(pct * total - 1, initial, max_lr), (total - 1, max_lr, min_lr)]
    start = 0
    for i, (end, a, b) in enumerate(phases):
        if step <= end or i == len(phases) - 1:
            p = (step - start) / (end - start)
            return b + (a - b) / 2 * (math.cos(math.pi * p) + 1)
        start = end
    raise AssertionError


def test_onecycle_matches_pytorch_algorithm():
    s = OneCycleSchedule(0.1, total_steps=100)
    assert s.lr_at(0) == pytest.approx(0.1 / 25, rel=1e-12)
    assert s.lr_at(29) == pytest.approx(0.1, rel=1e-12)  # peak at pct_start * total - 1
    assert s.lr_at(99) == pytest.approx(0.1 / 25 / 1e4, rel=1e-9)
    assert s.lr_at(150) == pytest.approx(0.1 / 25 / 1e4, rel=1e-9)
    for t in (1, 10, 28, 30, 31, 64, 98):
        assert s.lr_at(t) == pytest.approx(onecycle_ref(0.1, 100, 0.3, 25, 1e4, t), rel=1e-12)
    o = OneCycleSchedule(1.0, total_steps=40, pct_start=0.25, div_factor=10, final_div_factor=100)
    for t in (0, 5, 9, 10, 25, 39):
        assert o.lr_at(t) == pytest.approx(onecycle_ref(1.0, 40, 0.25, 10, 100, t), rel=1e-12)


def test_onecycle_tiny_runs_stay_finite():
    for total in (1, 2, 3):
        s = OneCycleSchedule(0.1, total_steps=total)
        assert all(math.isfinite(v) and 0 < v <= 0.1 for v in s.values(total))


# -- factory ---------------------------------------------------------------------------------------


def test_get_schedule_defaults():
    assert set(SCHEDULES) == {"constant", "step", "exponential", "cosine", "cyclic", "onecycle", "plateau"}
    assert get_schedule("constant", 0.1, 50).lr_at(49) == 0.1
    st = get_schedule("step", 0.1, 300)
    assert st.milestones == [100, 200] and st.lr_at(100) == pytest.approx(0.01)
    ex = get_schedule("exponential", 0.1, 100)
    assert ex.lr_at(0) == 0.1 and ex.lr_at(99) == pytest.approx(0.001, rel=1e-12)
    exe = get_schedule("exponential", 0.1, 100, steps_per_epoch=10)  # per epoch
    assert exe.lr_at(9) == 0.1 and exe.lr_at(99) == pytest.approx(0.001, rel=1e-12)
    co = get_schedule("Cosine", 0.1, 100, warmup_steps=10)
    assert co.lr_at(9) == pytest.approx(0.1) and co.lr_at(100) == pytest.approx(0.0, abs=1e-15)
    assert get_schedule("cyclic", 0.1, 800).step_size == 100  # total // 8: four cycles
    assert get_schedule("cyclic", 0.1, 800, steps_per_epoch=50).step_size == 100  # 2 epochs
    oc = get_schedule("onecycle", 0.1, 100)
    assert oc.lr_at(29) == pytest.approx(0.1) and oc.lr_at(0) == pytest.approx(0.004)
    assert isinstance(get_schedule("step", 0.1, 300, step_size=7), StepSchedule)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: get_schedule("warmup", 0.1, 10), "unknown schedule 'warmup'.*constant.*onecycle"),
        (lambda: get_schedule("cosine", 0.1, 0), "total_steps.*got 0"),
        (lambda: get_schedule("cosine", 0.1, -5), "total_steps.*got -5"),
        (lambda: get_schedule("cosine", 0.1, 10, wibble=1), "unknown option.*wibble"),
        (lambda: get_schedule("cyclic", 0.1, 10, step_size=0), "step_size.*got 0"),
        (lambda: StepSchedule(0.1, step_size=0), "step_size.*got 0"),
        (lambda: StepSchedule(0.1), "exactly one of step_size and milestones"),
        (lambda: StepSchedule(0.1, milestones=[5, 3]), "strictly increasing"),
        (lambda: CyclicSchedule(0.1, step_size=0), "step_size.*got 0"),
        (lambda: CosineSchedule(0.1, 10, warmup_steps=10), "warmup_steps.*got 10"),
        (lambda: CosineSchedule(-0.1, 10), "lr.*got -0.1"),
        (lambda: ExponentialSchedule(0.1, gamma=0.0), "gamma.*got 0.0"),
        (lambda: OneCycleSchedule(0.1, 10, pct_start=1.0), "pct_start.*got 1.0"),
        (lambda: ConstantSchedule(float("nan")), "lr.*got nan"),
        (lambda: ConstantSchedule(0.1).lr_at(-1), "step.*got -1"),
    ],
)
def test_bad_schedule_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_warmup_wraps_other_schedules():
    s = get_schedule("step", 0.1, 300, warmup_steps=4)
    assert isinstance(s, WarmupSchedule)
    assert [s.lr_at(t) for t in (0, 1, 3, 4)] == pytest.approx([0.025, 0.05, 0.1, 0.1])
    assert s.lr_at(100) == pytest.approx(0.01)  # the inner schedule is not shifted
    c = get_schedule("constant", 0.2, 10, warmup_steps=2)
    assert [c.lr_at(t) for t in (0, 1, 2)] == pytest.approx([0.1, 0.2, 0.2])
    assert c.config() == {"type": "constant", "lr": 0.2, "warmup_steps": 2}
    with pytest.raises(ValueError, match="onecycle warms up by itself.*warmup_steps=5"):
        get_schedule("onecycle", 0.1, 100, warmup_steps=5)
    with pytest.raises(ValueError, match="warmup_steps must be < total_steps=10, got 10"):
        get_schedule("exponential", 0.1, 10, warmup_steps=10)
