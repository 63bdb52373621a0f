"""RAdam: Adam whose adaptive step is switched on only once its variance estimate is reliable."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from xnet.backends import Array
from xnet.backends.fast_paths import COUPLED_DECAY, DECOUPLED_DECAY
from xnet.optim.betas import check_betas_and_decay, decay_and_moments, pick_betas
from xnet.optim.checks import check_positive
from xnet.optim.optimizer import Optimizer, ParamsArg, UpdateRule
from xnet.optim.regularizers import Regularizer


def rectification(beta2: float, t: int) -> float | None:
    """RAdam's factor r_t at step t, or None while rho_t <= 5 (the variance is not yet tractable)."""
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2.0 * t * beta2**t / (1.0 - beta2**t)
    if rho_t <= 5.0:
        return None
    return math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))


class RAdam(Optimizer):
    """RAdam (Liu et al. 2020) as PyTorch computes it, at step t = 1, 2, ...:

    m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2;   m_hat = m / (1 - beta1^t)
    rho_inf = 2 / (1 - beta2) - 1,  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
    rho_t > 5:  w -= lr * m_hat * r_t * sqrt(1 - beta2^t) / (sqrt(v) + eps),
                r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
    otherwise:  w -= lr * m_hat   (SGD with momentum for the first few steps)

    weight_decay adds weight_decay * w to g (coupled), or with decoupled_weight_decay=True shrinks
    w by (1 - lr * weight_decay) first; weights only unless decay_all.
    """

    name = "radam"
    state_names = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        betas: tuple[float, float] | None = None,
        regularizers: Sequence[Regularizer] | None = None,
        clip_norm: float | None = None,
        clip_value: float | None = None,
    ):
        beta1, beta2 = pick_betas(type(self).__name__, beta1, beta2, betas)
        defaults = {
            "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
        }  # fmt: skip
        super().__init__(params, lr, defaults, regularizers, clip_norm, clip_value)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_betas_and_decay("RAdam", group)
        group["eps"] = check_positive("RAdam", "eps", group["eps"])

    def _rule(self, group: dict[str, Any]) -> UpdateRule:
        xp, t = self._xp, self.t
        lr, b1, b2, eps = group["lr"], group["beta1"], group["beta2"], group["eps"]
        wd, decoupled = group["weight_decay"], group["decoupled_weight_decay"]
        rect = rectification(b2, t)
        step_size = lr / (1.0 - b1**t)
        if rect is not None:
            step_size *= rect * math.sqrt(1.0 - b2**t)

        def update(w: Array, g: Array, m: Array, v: Array, decay: bool) -> None:
            decay_and_moments(xp, w, g, m, v, b1, b2, wd, lr, decoupled, decay)
            if rect is None:
                w -= step_size * m
                return
            d = xp.sqrt(v)
            d += eps
            d = m / d
            d *= step_size
            w -= d

        scalars = {"b1": b1, "one_minus_b1": 1.0 - b1, "b2": b2, "one_minus_b2": 1.0 - b2, "eps": eps,
                   "step_size": step_size, "rectified": rect is not None,
                   "wd": wd, "shrink": 1.0 - lr * wd}  # fmt: skip
        mode = DECOUPLED_DECAY if decoupled else COUPLED_DECAY
        return UpdateRule("radam", update, scalars, mode)  # a compiled CPU kernel
