"""Adamax: Adam with the infinity norm of past gradients in place of their root mean square."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xnet.backends import Array
from xnet.backends.fast_paths import COUPLED_DECAY
from xnet.optim.arrays import flush_subnormal
from xnet.optim.betas import check_betas_and_decay, pick_betas
from xnet.optim.checks import check_positive
from xnet.optim.optimizer import Optimizer, ParamsArg, UpdateRule
from xnet.optim.regularizers import Regularizer


class Adamax(Optimizer):
    """Adamax (Kingma & Ba, section 7.1) as PyTorch computes it, at step t = 1, 2, ...:

    m = beta1 * m + (1 - beta1) * g;   u = max(beta2 * u, |g| + eps)
    w -= lr / (1 - beta1^t) * m / u

    (eps sits inside the max, as in PyTorch, so u is never 0.) weight_decay is coupled (added
    to g, weights only unless decay_all). `betas` (a pair) may be given instead of beta1/beta2.
    """

    name = "adamax"
    state_names = ("exp_avg", "exp_inf")

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 0.002,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        betas: tuple[float, float] | None = None,
        regularizers: Sequence[Regularizer] | None = None,
        clip_norm: float | None = None,
        clip_value: float | None = None,
    ):
        beta1, beta2 = pick_betas(type(self).__name__, beta1, beta2, betas)
        defaults = {"beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, lr, defaults, regularizers, clip_norm, clip_value)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_betas_and_decay("Adamax", group)
        group["eps"] = check_positive("Adamax", "eps", group["eps"])

    def _rule(self, group: dict[str, Any]) -> UpdateRule:
        xp = self._xp
        b1, b2, eps = group["beta1"], group["beta2"], group["eps"]
        wd = group["weight_decay"]
        step_size = group["lr"] / (1.0 - b1**self.t)
        one_minus_b1 = 1.0 - b1

        def update(w: Array, g: Array, m: Array, u: Array, decay: bool) -> None:
            if decay:
                g += wd * w
            m *= b1
            m += one_minus_b1 * g
            flush_subnormal(m, xp)  # u = max(b2 * u, |g| + eps) never falls below eps: no flush
            a = xp.abs(g)
            a += eps
            u *= b2
            u[...] = xp.maximum(u, a)
            d = m / u
            d *= step_size
            w -= d

        scalars = {"b1": b1, "one_minus_b1": one_minus_b1, "b2": b2, "eps": eps, "step_size": step_size, "wd": wd}
        return UpdateRule("adamax", update, scalars, COUPLED_DECAY)  # a compiled CPU kernel
