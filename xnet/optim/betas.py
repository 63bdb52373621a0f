"""What the Adam family beyond Adam itself shares: a `betas` pair, the weight-decay mode, the moment update."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from xnet.backends import Array
from xnet.checks import check_bool
from xnet.optim.arrays import flush_subnormal
from xnet.optim.checks import check_nonneg, check_unit


def pick_betas(owner: str, beta1: float, beta2: float, betas: Any) -> tuple[float, float]:
    """(beta1, beta2), taken from `betas` (PyTorch's pair) when it is given."""
    if betas is None:
        return beta1, beta2
    if not isinstance(betas, (tuple, list)):
        raise TypeError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r}")
    if len(betas) != 2:
        raise ValueError(f"{owner}: betas must be a pair, got {betas!r}")
    return betas[0], betas[1]


def check_betas_and_decay(owner: str, group: dict[str, Any]) -> None:
    """Normalise a group's beta1, beta2, weight_decay and (when present) decoupled_weight_decay in place."""
    group["beta1"] = check_unit(owner, "beta1", group["beta1"])
    group["beta2"] = check_unit(owner, "beta2", group["beta2"])
    group["weight_decay"] = check_nonneg(owner, "weight_decay", group["weight_decay"])
    if "decoupled_weight_decay" in group:
        group["decoupled_weight_decay"] = check_bool(owner, "decoupled_weight_decay", group["decoupled_weight_decay"])


def decay_and_moments(
    xp: ModuleType,
    w: Array,
    g: Array,
    m: Array,
    v: Array,
    b1: float,
    b2: float,
    wd: float,
    lr: float,
    decoupled: bool,
    decay: bool,
) -> None:
    """In place: weight decay (w *= 1 - lr * wd, or g += wd * w), then m and v, Adam's running means of g and
    g^2, each flushed (arrays.flush_subnormal)."""
    if decay:
        if decoupled:
            w *= 1.0 - lr * wd
        else:
            g += wd * w
    m *= b1
    m += (1.0 - b1) * g
    flush_subnormal(m, xp)
    v *= b2
    v += (1.0 - b2) * (g * g)
    flush_subnormal(v, xp)
