"""Lion: the sign of an interpolated momentum as the update (Chen et al. 2023, "Symbolic Discovery")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xnet.backends import Array
from xnet.backends.fast_paths import DECOUPLED_DECAY
from xnet.optim.arrays import flush_subnormal
from xnet.optim.betas import check_betas_and_decay, pick_betas
from xnet.optim.optimizer import Optimizer, ParamsArg, UpdateRule
from xnet.optim.regularizers import Regularizer


class Lion(Optimizer):
    """Lion, as the paper's Algorithm 2 and optax's `lion` compute it:

    c = beta1 * m + (1 - beta1) * g;   w -= lr * (sign(c) + weight_decay * w)
    m = beta2 * m + (1 - beta2) * g

    The step has size lr in every coordinate, so lr is 3-10x smaller than AdamW's (the paper).
    weight_decay is decoupled (weights only unless decay_all); 0 by default, as in the paper's
    reference code (optax defaults to 1e-3). `betas` (a pair) may be given instead of beta1/beta2.
    """

    name = "lion"
    state_names = ("exp_avg",)

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 1e-4,
        beta1: float = 0.9,
        beta2: float = 0.99,
        weight_decay: float = 0.0,
        betas: tuple[float, float] | None = None,
        regularizers: Sequence[Regularizer] | None = None,
        clip_norm: float | None = None,
        clip_value: float | None = None,
    ):
        beta1, beta2 = pick_betas(type(self).__name__, beta1, beta2, betas)
        defaults = {"beta1": beta1, "beta2": beta2, "weight_decay": weight_decay}
        super().__init__(params, lr, defaults, regularizers, clip_norm, clip_value)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_betas_and_decay("Lion", group)

    def _rule(self, group: dict[str, Any]) -> UpdateRule:
        xp = self._xp
        lr, b1, b2 = group["lr"], group["beta1"], group["beta2"]
        wd = group["weight_decay"]
        one_minus_b1, one_minus_b2, shrink = 1.0 - b1, 1.0 - b2, 1.0 - lr * wd

        def update(w: Array, g: Array, m: Array, decay: bool) -> None:
            c = b1 * m
            c += one_minus_b1 * g
            if decay:
                w *= shrink
            w -= lr * xp.sign(c)
            m *= b2
            m += one_minus_b2 * g
            flush_subnormal(m, xp)

        scalars = {"lr": lr, "b1": b1, "one_minus_b1": one_minus_b1, "b2": b2, "one_minus_b2": one_minus_b2,
                   "wd": wd, "shrink": shrink}  # fmt: skip
        return UpdateRule("lion", update, scalars, DECOUPLED_DECAY)  # a compiled CPU kernel
