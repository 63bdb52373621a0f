"""RMSprop: step sizes scaled by a running mean of squared gradients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xnet.backends import Array
from xnet.backends.fast_paths import COUPLED_DECAY
from xnet.optim.arrays import flush_subnormal
from xnet.optim.checks import check_nonneg, check_positive, check_unit
from xnet.optim.groups import ParamsArg
from xnet.optim.optimizer import Optimizer, UpdateRule
from xnet.optim.regularizers import Regularizer


class RMSprop(Optimizer):
    """RMSprop: G = rho * G + (1 - rho) * g^2;  w -= lr * g / (sqrt(G) + eps), G starting at 0.

    weight_decay (coupled, weights only unless decay_all) adds weight_decay * w to g first.
    """

    name = "rmsprop"
    state_names = ("mean_sq",)

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 0.001,
        rho: float = 0.9,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        regularizers: Sequence[Regularizer] | None = None,
        clip_norm: float | None = None,
        clip_value: float | None = None,
    ):
        defaults = {"rho": rho, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, lr, defaults, regularizers, clip_norm, clip_value)

    def _check_group(self, group: dict[str, Any]) -> None:
        group["rho"] = check_unit("RMSprop", "rho", group["rho"])
        group["eps"] = check_positive("RMSprop", "eps", group["eps"])
        group["weight_decay"] = check_nonneg("RMSprop", "weight_decay", group["weight_decay"])

    def _rule(self, group: dict[str, Any]) -> UpdateRule:
        xp = self._xp
        lr, rho, eps, wd = group["lr"], group["rho"], group["eps"], group["weight_decay"]
        one_minus_rho = 1.0 - rho

        def update(w: Array, g: Array, G: Array, decay: bool) -> None:
            if decay:
                g += wd * w
            sq = g * g
            sq *= one_minus_rho
            G *= rho
            G += sq
            flush_subnormal(G, xp)
            d = xp.sqrt(G)
            d += eps
            d = g / d
            d *= lr
            w -= d

        scalars = {"lr": lr, "rho": rho, "one_minus_rho": one_minus_rho, "eps": eps, "wd": wd}
        return UpdateRule("rmsprop", update, scalars, COUPLED_DECAY)
