"""The learning-rate range test (Smith 2015, fastai's lr_find): train with an exponentially rising lr
and watch where the loss falls fastest and where it blows up.

`range_test` sweeps the lr from `start_lr` to `end_lr` over at most one epoch of the training loader,
one optimizer step per lr, reads the loss at every step (a sweep, not a training run: the syncs are
the point), smooths it with a bias-corrected moving average, and stops early once the smoothed loss
exceeds `diverge` times its best. The model, the optimizer (state and lr), the random stream and the
loader's epoch are put back bit for bit afterwards, so a fit that follows is the fit without the test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xnet.checks import check_int
from xnet.data.loader import DataLoader

SUGGESTIONS = ("minimum", "steepest")


@dataclass
class LRFindResult:
    """One range test: the lr of each step, its loss, the smoothed loss, and the suggested peak lr.

    `suggestion` is the lr at the lowest smoothed loss (`method` "minimum"), or where the smoothed
    loss falls fastest per decade of lr ("steepest"); `candidates` holds both (see `suggest`).
    `stopped` says why the sweep ended ("end_lr", "diverged", "epoch").
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    method: str
    stopped: str
    candidates: dict[str, float] = field(default_factory=dict)

    def to_csv(self) -> str:
        """lr_find.csv: step, lr, loss, smoothed_loss, one row per step of the sweep."""
        rows = ["step,lr,loss,smoothed_loss"]
        for i, (lr, loss, sm) in enumerate(zip(self.lrs, self.losses, self.smoothed, strict=True)):
            rows.append(f"{i},{lr!r},{loss!r},{sm!r}")
        return "\n".join(rows) + "\n"


def check_bounds(
    start_lr: Any, end_lr: Any, owner: str = "lr_find", names: tuple[str, str] = ("start_lr", "end_lr")
) -> tuple[float, float]:
    """Both bounds finite numbers > 0 with start_lr < end_lr; ValueError/TypeError saying which is wrong.

    `names`: what the message calls them (the CLI's flags)."""
    out = []
    for name, value in zip(names, (start_lr, end_lr), strict=True):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError(f"{owner}: {name} must be a number > 0, got {value!r}")
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
        out.append(float(value))
    if not out[0] < out[1]:
        low, high = names
        raise ValueError(f"{owner}: {low} must be below {high} (the sweep rises), got {low} {start_lr!r}, "
                         f"{high} {end_lr!r}")  # fmt: skip
    return out[0], out[1]


def sweep_lrs(start_lr: float, end_lr: float, steps: int) -> list[float]:
    """start_lr * (end_lr / start_lr) ** (i / (steps - 1)) for i in 0..steps-1: evenly spaced in log lr."""
    if steps == 1:
        return [start_lr]
    ratio = end_lr / start_lr
    return [start_lr * ratio ** (i / (steps - 1)) for i in range(steps - 1)] + [end_lr]  # the end exactly


def ema(losses: list[float], beta: float) -> list[float]:
    """Bias-corrected exponential moving average: avg_i / (1 - beta^(i+1)), avg_i = beta avg_(i-1) + (1-beta) loss_i.

    What the sweep watches to stop (it needs only the past); it lags by about beta / (1 - beta) steps,
    so the curve a suggestion is read from is `smooth`'s instead."""
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1.0 - beta) * loss
        out.append(avg / (1.0 - beta ** (i + 1)))
    return out


def smooth(lrs: list[float], losses: list[float], width: float = 0.2) -> list[float]:
    """The loss averaged around each lr with Gaussian weights in log10(lr) (standard deviation `width` decades).

    Centred, so it does not lag: a moving average shifts the curve right by a number of steps, which
    moves its minimum by a different amount of lr for a sweep of 50 steps than for one of 100.
    Non-finite losses (a step that diverged) get no weight."""
    x = np.log10(np.asarray(lrs, dtype=np.float64))
    y = np.asarray(losses, dtype=np.float64)
    ok = np.isfinite(y)
    w = np.exp(-0.5 * ((x[:, None] - x[None, :]) / width) ** 2) * ok[None, :]  # (steps, steps)
    return [float(v) for v in (w @ np.where(ok, y, 0.0)) / w.sum(axis=1)]


def suggest(lrs: list[float], smoothed: list[float]) -> dict[str, float]:
    """The candidates for a peak lr from a sweep: "minimum" and "steepest" (see LRFindResult).

    "minimum" is the lr at the lowest smoothed loss: the largest lr at which the loss still falls,
    Smith's choice for the peak of a one-cycle or cyclic schedule. "steepest" is where the smoothed
    loss falls fastest per decade of lr, over the points up to the minimum, leaving out the first
    tenth of the sweep: a cautious constant lr.
    """
    sm = np.asarray(smoothed, dtype=np.float64)
    finite = np.isfinite(sm)
    if not finite.any():
        raise ValueError("lr_find: every loss of the sweep was NaN or infinite; lower start_lr")
    lowest = int(np.argmin(np.where(finite, sm, np.inf)))
    out = {"minimum": lrs[lowest]}
    first = min(len(lrs) // 10, max(lowest - 1, 0))
    if lowest - first < 2:  # too few points before the minimum to take a slope
        out["steepest"] = out["minimum"]
        return out
    x = np.log10(np.asarray(lrs[first : lowest + 1]))
    slope = np.gradient(sm[first : lowest + 1], x)
    out["steepest"] = lrs[first + int(np.argmin(slope))]
    return out


def range_test(
    trainer: Any,
    loader: DataLoader,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    beta: float = 0.9,
    diverge: float = 4.0,
    method: str = "minimum",
    width: float = 0.2,
) -> LRFindResult:
    """Sweep `trainer`'s optimizer lr over `loader` (at most one epoch of it) and restore everything after.

    `loader` is a training DataLoader (shuffled); `steps` the number of lrs tried (capped at the epoch's
    steps). The sweep stops once the moving average of the loss (`beta`) exceeds `diverge` times its
    lowest; the suggestion is read from the loss smoothed over `width` decades of lr (`smooth`).
    Returns the sweep and the suggested peak lr.
    """
    start_lr, end_lr = check_bounds(start_lr, end_lr)
    check_int("lr_find", "steps", steps, minimum=2)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < 1:
        raise ValueError(f"lr_find: beta (the smoothing) must be in [0, 1), got {beta!r}")
    if isinstance(diverge, bool) or not isinstance(diverge, (int, float)) or not diverge > 1:
        raise ValueError(f"lr_find: diverge must be a number > 1 (a factor over the best loss), got {diverge!r}")
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"lr_find: width (of the smoothing, in decades of lr) must be > 0, got {width!r}")
    if method not in SUGGESTIONS:
        raise ValueError(f"lr_find: method must be one of {', '.join(SUGGESTIONS)}, got {method!r}")
    if getattr(trainer.parallel, "size", 1) != 1:
        raise ValueError("lr_find runs in one process; run it without mpiexec")
    model, loss, opt, backend = trainer.model, trainer.loss, trainer.optimizer, trainer.backend
    n = min(int(steps), len(loader))
    lrs = sweep_lrs(start_lr, end_lr, n)
    saved = (model.state_dict(), opt.state_dict(), backend.rng.state_dict(), loader.epoch, model.training)
    input_grad = getattr(model, "needs_input_grad", None)
    losses: list[float] = []
    averaged: list[float] = []  # ema(losses, beta), one step at a time
    avg = 0.0
    stopped = "end_lr" if n == steps else "epoch"
    try:
        if input_grad is not None:
            model.needs_input_grad = False
        backend.rng.seed(trainer.seed, trainer.epoch + 1)  # the draws the next epoch of fit would make
        loader.set_epoch(trainer.epoch + 1)
        model.train()
        with np.errstate(over="ignore", invalid="ignore"):
            for lr, (xb, yb) in zip(lrs, loader, strict=False):
                opt.lr = lr
                value = loss.forward(model.forward(xb), yb)
                opt.zero_grad()
                model.backward(loss.backward())
                opt.step()
                losses.append(float(backend.item(value)) * float(loss.mean_factor()))
                avg = beta * avg + (1.0 - beta) * losses[-1]
                averaged.append(avg / (1.0 - beta ** len(losses)))
                if not math.isfinite(averaged[-1]) or averaged[-1] > diverge * min(averaged):
                    stopped = "diverged"
                    break
    finally:
        weights, opt_state, rng_state, epoch, training = saved
        model.load_state_dict(weights)
        opt.load_state_dict(opt_state)
        backend.rng.load_state_dict(rng_state)
        loader.set_epoch(epoch)
        model.train(training)
        if input_grad is not None:
            model.needs_input_grad = input_grad
    if len(losses) < 2:
        raise ValueError(
            f"lr_find: the loss diverged at the first steps (lr {lrs[0]:.3g}); lower start_lr"
            if losses
            else "lr_find: the training data gave no batch"
        )
    lrs = lrs[: len(losses)]
    smoothed = smooth(lrs, losses, width)
    candidates = suggest(lrs, smoothed)
    return LRFindResult(lrs, losses, smoothed, candidates[method], method, stopped, candidates)
