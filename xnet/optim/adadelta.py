"""Adadelta: step sizes from running means of squared gradients and of squared updates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xnet.backends import Array
from xnet.backends.fast_paths import COUPLED_DECAY
from xnet.optim.arrays import flush_subnormal
from xnet.optim.checks import check_nonneg, check_positive, check_unit
from xnet.optim.optimizer import Optimizer, ParamsArg, UpdateRule
from xnet.optim.regularizers import Regularizer


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012) as PyTorch computes it, with E[g^2] and E[dx^2] starting at 0:

    E[g^2] = rho * E[g^2] + (1 - rho) * g^2
    dx = sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g
    E[dx^2] = rho * E[dx^2] + (1 - rho) * dx^2;   w -= lr * dx

    lr=1.0 is the paper's (and PyTorch's) plain form; weight_decay (coupled, weights only unless
    decay_all) adds weight_decay * w to g first.
    """

    name = "adadelta"
    state_names = ("square_avg", "acc_delta")

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        regularizers: Sequence[Regularizer] | None = None,
        clip_norm: float | None = None,
        clip_value: float | None = None,
    ):
        defaults = {"rho": rho, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, lr, defaults, regularizers, clip_norm, clip_value)

    def _check_group(self, group: dict[str, Any]) -> None:
        group["rho"] = check_unit("Adadelta", "rho", group["rho"])
        group["eps"] = check_positive("Adadelta", "eps", group["eps"])
        group["weight_decay"] = check_nonneg("Adadelta", "weight_decay", group["weight_decay"])

    def _rule(self, group: dict[str, Any]) -> UpdateRule:
        xp = self._xp
        lr, rho, eps = group["lr"], group["rho"], group["eps"]
        wd = group["weight_decay"]
        one_minus_rho = 1.0 - rho

        def update(w: Array, g: Array, sq: Array, acc: Array, decay: bool) -> None:
            if decay:
                g += wd * w
            sq *= rho
            sq += one_minus_rho * (g * g)
            flush_subnormal(sq, xp)
            d = xp.sqrt(acc + eps)
            d /= xp.sqrt(sq + eps)
            d *= g
            acc *= rho
            acc += one_minus_rho * (d * d)
            flush_subnormal(acc, xp)
            d *= lr
            w -= d

        scalars = {"lr": lr, "rho": rho, "one_minus_rho": one_minus_rho, "eps": eps, "wd": wd}
        return UpdateRule("adadelta", update, scalars, COUPLED_DECAY)  # a compiled CPU kernel
