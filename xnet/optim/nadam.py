"""NAdam: Adam with Nesterov momentum and Dozat's warming momentum schedule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from xnet.backends import Array
from xnet.backends.fast_paths import COUPLED_DECAY, DECOUPLED_DECAY
from xnet.optim.betas import check_betas_and_decay, decay_and_moments, pick_betas
from xnet.optim.checks import check_nonneg, check_positive
from xnet.optim.optimizer import Optimizer, ParamsArg, UpdateRule
from xnet.optim.regularizers import Regularizer


def momentum_at(beta1: float, momentum_decay: float, t: int) -> float:
    """Dozat's momentum at step t: beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))."""
    return beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))


class NAdam(Optimizer):
    """NAdam (Dozat 2016) as PyTorch computes it, at step t = 1, 2, ...:

    mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)),  P_t = mu_1 * ... * mu_t
    m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2
    d = sqrt(v / (1 - beta2^t)) + eps
    w -= lr * (1 - mu_t) / (1 - P_t) * g / d + lr * mu_{t+1} / (1 - P_t * mu_{t+1}) * m / d

    weight_decay adds weight_decay * w to g (coupled), or with decoupled_weight_decay=True shrinks
    w by (1 - lr * weight_decay) first (NAdamW); weights only unless decay_all. P_t is a scalar
    the optimizer keeps per group, recomputed from t after load_state_dict.
    """

    name = "nadam"
    state_names = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 0.002,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 0.004,
        decoupled_weight_decay: bool = False,
        betas: tuple[float, float] | None = None,
        regularizers: Sequence[Regularizer] | None = None,
        clip_norm: float | None = None,
        clip_value: float | None = None,
    ):
        beta1, beta2 = pick_betas(type(self).__name__, beta1, beta2, betas)
        defaults = {
            "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay,
            "momentum_decay": momentum_decay, "decoupled_weight_decay": decoupled_weight_decay,
        }  # fmt: skip
        # id(group) -> (t, P_t): the product grows by one factor a step, as PyTorch's mu_product
        self._mu_products: dict[int, tuple[int, float]] = {}
        super().__init__(params, lr, defaults, regularizers, clip_norm, clip_value)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_betas_and_decay("NAdam", group)
        group["eps"] = check_positive("NAdam", "eps", group["eps"])
        group["momentum_decay"] = check_nonneg("NAdam", "momentum_decay", group["momentum_decay"])

    def _mu_product(self, group: dict[str, Any], t: int) -> float:
        """P_t for this group: one more factor than at step t - 1, or the whole product after a reload."""
        b1, decay = group["beta1"], group["momentum_decay"]
        last = self._mu_products.get(id(group))
        if last is not None and last[0] == t - 1:
            product = last[1] * momentum_at(b1, decay, t)
        else:
            product = 1.0
            for s in range(1, t + 1):
                product *= momentum_at(b1, decay, s)
        self._mu_products[id(group)] = (t, product)
        return product

    def _rule(self, group: dict[str, Any]) -> UpdateRule:
        xp, t = self._xp, self.t
        lr, b1, b2, eps = group["lr"], group["beta1"], group["beta2"], group["eps"]
        wd, decoupled = group["weight_decay"], group["decoupled_weight_decay"]
        mu, mu_next = momentum_at(b1, group["momentum_decay"], t), momentum_at(b1, group["momentum_decay"], t + 1)
        product = self._mu_product(group, t)
        grad_step = lr * (1.0 - mu) / (1.0 - product)
        momentum_step = lr * mu_next / (1.0 - product * mu_next)
        sqrt_bc2 = math.sqrt(1.0 - b2**t)

        def update(w: Array, g: Array, m: Array, v: Array, decay: bool) -> None:
            decay_and_moments(xp, w, g, m, v, b1, b2, wd, lr, decoupled, decay)
            d = xp.sqrt(v)
            d /= sqrt_bc2
            d += eps
            w -= grad_step * (g / d)
            w -= momentum_step * (m / d)

        # the momentum schedule (mu_t, P_t) is per step, so it reaches the kernel as two scalars
        scalars = {"b1": b1, "one_minus_b1": 1.0 - b1, "b2": b2, "one_minus_b2": 1.0 - b2, "eps": eps,
                   "sqrt_bc2": sqrt_bc2, "grad_step": grad_step, "momentum_step": momentum_step, "wd": wd,
                   "shrink": 1.0 - lr * wd}  # fmt: skip
        mode = DECOUPLED_DECAY if decoupled else COUPLED_DECAY
        return UpdateRule("nadam", update, scalars, mode)  # a compiled CPU kernel
