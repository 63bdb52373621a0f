"""Learning-rate schedules: plain Python objects with a pure `lr_at(step)`.

`step` is the optimizer step index, starting at 0 (the lr used by the first update). Nothing
here touches arrays or an optimizer, so a schedule can be plotted without training. The
trainer sets `opt.lr = schedule.lr_at(step)` before each update.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from numbers import Integral
from typing import Any

import numpy as np

from xnet.optim.checks import check_count, check_nonneg, check_positive


class Schedule:
    """Base class: `lr_at(step) -> float`, pure; `config()` describes it (JSON-able)."""

    name = "schedule"

    def lr_at(self, step: int) -> float:
        """The learning rate for optimizer step `step` (0-based)."""
        raise NotImplementedError

    def __call__(self, step: int) -> float:
        return self.lr_at(step)

    def values(self, n: int) -> list[float]:
        """lr_at(0), ..., lr_at(n - 1): handy for plotting."""
        return [self.lr_at(i) for i in range(n)]

    def config(self) -> dict[str, Any]:
        """{"type": name, constructor arguments...}."""
        cfg = {"type": self.name}
        cfg.update({k: v for k, v in vars(self).items() if not k.startswith("_")})
        return cfg

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


def _check_step(owner: str, step: int) -> None:
    # runs every training step: one type test and one comparison on the usual path
    if type(step) is not int or step < 0:
        _bad_step(owner, step)


def _bad_step(owner: str, step: object) -> None:
    """Accept a NumPy int >= 0; anything else is a TypeError (not an int) or ValueError (negative)."""
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, Integral):
        raise TypeError(f"{owner}.lr_at: step must be an int >= 0, got {step!r}")
    if step < 0:
        raise ValueError(f"{owner}.lr_at: step must be >= 0, got {step!r}")


def _decayed(owner: str, lr: float, gamma: float, k: int) -> float:
    """lr * gamma^k; a gamma > 1 that overflows the float range is a ValueError, not OverflowError."""
    try:
        return lr * gamma**k
    except OverflowError:
        raise ValueError(
            f"{owner}: the lr overflows at {k} decays (gamma={gamma!r} > 1 grows it without bound); "
            "use gamma <= 1 or fewer steps"
        ) from None


class ConstantSchedule(Schedule):
    """lr at every step."""

    name = "constant"

    def __init__(self, lr: float):
        self.lr = check_nonneg("ConstantSchedule", "lr", lr)

    def lr_at(self, step: int) -> float:
        _check_step("ConstantSchedule", step)
        return self.lr


class StepSchedule(Schedule):
    """lr * gamma^k, where k counts the milestones <= step (so the drop happens AT a milestone),
    or k = step // step_size when step_size is given instead. Like PyTorch's StepLR/MultiStepLR.
    """

    name = "step"

    def __init__(
        self,
        lr: float,
        step_size: int | None = None,
        gamma: float = 0.1,
        milestones: Sequence[int] | None = None,
    ):
        owner = "StepSchedule"
        self.lr = check_nonneg(owner, "lr", lr)
        self.gamma = check_positive(owner, "gamma", gamma)
        if (step_size is None) == (milestones is None):
            raise ValueError(f"{owner}: give exactly one of step_size and milestones, got "
                             f"step_size={step_size!r}, milestones={milestones!r}")
        self.step_size = None if step_size is None else check_count(owner, "step_size", step_size)
        if milestones is not None:
            if isinstance(milestones, Integral) and not isinstance(milestones, (bool, np.bool_)):
                milestones = [milestones]  # one milestone, as PyTorch users write MultiStepLR([5]) or 5
            elif isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
                raise TypeError(f"{owner}: milestones must be a list of step numbers, got {milestones!r}")
            ms = list(milestones)
            for m in ms:
                check_count(owner, "milestones", m)
            if ms != sorted(set(ms)):
                raise ValueError(f"{owner}: milestones must be strictly increasing, got {ms!r}")
            milestones = ms
        self.milestones = milestones

    def lr_at(self, step: int) -> float:
        _check_step("StepSchedule", step)
        if self.step_size is not None:
            return _decayed("StepSchedule", self.lr, self.gamma, step // self.step_size)
        k = bisect.bisect_right(self.milestones, step)
        return self.lr * self.gamma**k


def thirds_milestones(total_steps: int) -> list[int]:
    """Milestones at 1/3 and 2/3 of the run (duplicates and 0 dropped for tiny runs)."""
    total_steps = check_count("thirds_milestones", "total_steps", total_steps)
    return sorted({m for m in (total_steps // 3, 2 * total_steps // 3) if m > 0})


def step_at_thirds(lr: float, total_steps: int, gamma: float = 0.1) -> Schedule:
    """The common recipe: multiply lr by gamma (0.1) at each third of the run."""
    ms = thirds_milestones(total_steps)
    return StepSchedule(lr, gamma=gamma, milestones=ms) if ms else ConstantSchedule(lr)


class ExponentialSchedule(Schedule):
    """lr * gamma^step, or lr * gamma^(step // steps_per_epoch) (per epoch) when given."""

    name = "exponential"

    def __init__(self, lr: float, gamma: float, steps_per_epoch: int | None = None):
        owner = "ExponentialSchedule"
        self.lr = check_nonneg(owner, "lr", lr)
        self.gamma = check_positive(owner, "gamma", gamma)
        self.steps_per_epoch = (
            None if steps_per_epoch is None else check_count(owner, "steps_per_epoch", steps_per_epoch)
        )

    def lr_at(self, step: int) -> float:
        _check_step("ExponentialSchedule", step)
        k = step if self.steps_per_epoch is None else step // self.steps_per_epoch
        return _decayed("ExponentialSchedule", self.lr, self.gamma, k)


class CosineSchedule(Schedule):
    """Cosine annealing from lr to floor over the steps after an optional linear warm-up.

    warm-up (step < W):  lr * (step + 1) / W          (the first update already moves; step
                                                        W - 1 reaches lr)
    after:               floor + 0.5 (lr - floor) (1 + cos(pi t / T)),  t = step - W,
                         T = total_steps - W; steps past the end stay at floor.
    """

    name = "cosine"

    def __init__(self, lr: float, total_steps: int, warmup_steps: int = 0, floor: float = 0.0):
        owner = "CosineSchedule"
        self.lr = check_nonneg(owner, "lr", lr)
        self.total_steps = check_count(owner, "total_steps", total_steps)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"{owner}: warmup_steps must be an int >= 0, got {warmup_steps!r}")
        if warmup_steps >= total_steps:
            raise ValueError(f"{owner}: warmup_steps must be < total_steps={total_steps}, "
                             f"got {warmup_steps!r}")
        self.warmup_steps = warmup_steps
        self.floor = check_nonneg(owner, "floor", floor)
        if self.floor > self.lr:
            raise ValueError(f"{owner}: floor (the final lr) must be <= lr={self.lr!r}, got {floor!r}")

    def lr_at(self, step: int) -> float:
        _check_step("CosineSchedule", step)
        W = self.warmup_steps
        if step < W:
            return self.lr * (step + 1) / W
        T = self.total_steps - W
        t = min(step - W, T)
        return self.floor + 0.5 * (self.lr - self.floor) * (1.0 + math.cos(math.pi * t / T))


class CyclicSchedule(Schedule):
    """Triangular cyclic lr (Smith 2017) between base_lr (default 0.01 * lr) and max_lr = lr,
    half-period `step_size`: cycle = floor(1 + t / (2 s)), x = |t / s - 2 cycle + 1|,
    lr_t = base + (max - base) * max(0, 1 - x). Troughs at t = 0, 2s, 4s...; peaks at s, 3s...
    """

    name = "cyclic"

    def __init__(self, lr: float, step_size: int, base_lr: float | None = None):
        owner = "CyclicSchedule"
        self.lr = check_nonneg(owner, "lr", lr)
        self.step_size = check_count(owner, "step_size", step_size)
        self.base_lr = 0.01 * self.lr if base_lr is None else check_nonneg(owner, "base_lr", base_lr)
        if base_lr is not None and not self.base_lr < self.lr:
            raise ValueError(f"{owner}: base_lr (the lowest lr) must be < lr={self.lr!r} (the peak), got {base_lr!r}")

    def lr_at(self, step: int) -> float:
        _check_step("CyclicSchedule", step)
        s = self.step_size
        cycle = math.floor(1 + step / (2 * s))
        x = abs(step / s - 2 * cycle + 1)
        return self.base_lr + (self.lr - self.base_lr) * max(0.0, 1.0 - x)


class OneCycleSchedule(Schedule):
    """One-cycle policy as PyTorch's OneCycleLR (anneal_strategy='cos', two phases):
    cosine from max_lr / div_factor up to max_lr over the first pct_start of the run (peak at
    step pct_start * total_steps - 1), then cosine down to max_lr / (div_factor *
    final_div_factor) at step total_steps - 1; later steps stay there.
    """

    name = "onecycle"

    def __init__(
        self,
        lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
    ):
        owner = "OneCycleSchedule"
        self.lr = check_nonneg(owner, "lr", lr)
        self.total_steps = check_count(owner, "total_steps", total_steps)
        self.pct_start = check_positive(owner, "pct_start", pct_start)
        if self.pct_start >= 1:
            raise ValueError(f"{owner}: pct_start must be in (0, 1), got {pct_start!r}")
        self.div_factor = check_positive(owner, "div_factor", div_factor)
        self.final_div_factor = check_positive(owner, "final_div_factor", final_div_factor)

    @staticmethod
    def _cos(start: float, end: float, pct: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    def lr_at(self, step: int) -> float:
        _check_step("OneCycleSchedule", step)
        initial = self.lr / self.div_factor
        final = initial / self.final_div_factor
        peak_step = self.pct_start * self.total_steps - 1
        last_step = self.total_steps - 1
        step = min(step, last_step)
        if step <= peak_step:
            return self._cos(initial, self.lr, step / peak_step if peak_step > 0 else 1.0)
        span = last_step - peak_step
        return self._cos(self.lr, final, (step - peak_step) / span if span > 0 else 1.0)


class WarmupSchedule(Schedule):
    """Linear warm-up in front of another schedule: inner.lr_at(step) * min(1, (step + 1) / W).

    get_schedule uses it for `warmup_steps` on every schedule but cosine (whose warm-up is
    built in, with the cosine counted after it) and onecycle (which warms up by design).
    """

    name = "warmup"

    def __init__(self, inner: Schedule, warmup_steps: int):
        if not isinstance(inner, Schedule):
            raise TypeError(f"WarmupSchedule: inner must be a Schedule (e.g. ConstantSchedule(0.1)), got {inner!r}")
        self.inner = inner
        self.warmup_steps = check_count("WarmupSchedule", "warmup_steps", warmup_steps)

    def lr_at(self, step: int) -> float:
        lr = self.inner.lr_at(step)
        return lr * (step + 1) / self.warmup_steps if step < self.warmup_steps else lr

    def config(self) -> dict[str, Any]:
        return {**self.inner.config(), "warmup_steps": self.warmup_steps}


__all__ = [
    "ConstantSchedule",
    "CosineSchedule",
    "CyclicSchedule",
    "ExponentialSchedule",
    "OneCycleSchedule",
    "Schedule",
    "StepSchedule",
    "WarmupSchedule",
    "step_at_thirds",
    "thirds_milestones",
]
