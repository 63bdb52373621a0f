"""RMSprop: step sizes scaled by a running mean of squared gradients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xnet.backends import Array
from xnet.backends.fast_paths import COUPLED_DECAY, NO_DECAY, kernel_for
from xnet.optim.arrays import each_part
from xnet.optim.checks import check_nonneg, check_positive, check_unit
from xnet.optim.optimizer import Optimizer, ParamsArg
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

    def _update_group(self, group, params, states) -> None:
        xp = self._xp
        lr, rho, eps = group["lr"], group["rho"], group["eps"]
        wd, decay_all = group["weight_decay"], group["decay_all"]
        one_minus_rho = 1.0 - rho

        def update(w: Array, g: Array, G: Array, decay: bool) -> None:
            if decay:
                g += wd * w
            sq = g * g
            sq *= one_minus_rho
            G *= rho
            G += sq
            d = xp.sqrt(G)
            d += eps
            d = g / d
            d *= lr
            w -= d

        for p, (G,) in zip(params, states, strict=True):
            decay = bool(wd) and (decay_all or p.regularize)
            fast = kernel_for("rmsprop", p.data, p.grad, G)  # one fused launch on a GPU, else None
            if fast is not None:
                fast(lr, rho, one_minus_rho, eps, wd, COUPLED_DECAY if decay else NO_DECAY)
            else:
                each_part(update, (p.data, p.grad, G), decay)
