"""Adam and AdamW (Adam with decoupled weight decay)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from xnet.backends import Array
from xnet.backends.fast_paths import COUPLED_DECAY, DECOUPLED_DECAY
from xnet.checks import check_bool
from xnet.optim.arrays import flush_subnormal
from xnet.optim.checks import check_nonneg, check_positive, check_unit
from xnet.optim.groups import ParamsArg
from xnet.optim.optimizer import Optimizer, UpdateRule
from xnet.optim.regularizers import Regularizer


class Adam(Optimizer):
    """Adam (Kingma & Ba), at step t = 1, 2, ...:

    m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
    w -= lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t)

    bias_correction=False uses the raw m and v (a documented variant: small early steps).
    weight_decay here is coupled (added to g, like PyTorch's Adam); prefer AdamW. `betas`
    (a pair) may be given instead of beta1/beta2, as in PyTorch.
    """

    name = "adam"
    state_names = ("m", "v")
    _decoupled = False

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        bias_correction: bool = True,
        weight_decay: float = 0.0,
        betas: tuple[float, float] | None = None,
        regularizers: Sequence[Regularizer] | None = None,
        clip_norm: float | None = None,
        clip_value: float | None = None,
    ):
        if betas is not None:
            if not isinstance(betas, (tuple, list)):
                raise TypeError(f"{type(self).__name__}: betas must be a pair (beta1, beta2), got {betas!r}")
            if len(betas) != 2:
                raise ValueError(f"{type(self).__name__}: betas must be a pair, got {betas!r}")
            beta1, beta2 = betas
        defaults = {
            "beta1": beta1,
            "beta2": beta2,
            "eps": eps,
            "bias_correction": bias_correction,
            "weight_decay": weight_decay,
        }
        super().__init__(params, lr, defaults, regularizers, clip_norm, clip_value)

    def _check_group(self, group: dict[str, Any]) -> None:
        owner = type(self).__name__
        group["beta1"] = check_unit(owner, "beta1", group["beta1"])
        group["beta2"] = check_unit(owner, "beta2", group["beta2"])
        group["eps"] = check_positive(owner, "eps", group["eps"])
        group["weight_decay"] = check_nonneg(owner, "weight_decay", group["weight_decay"])
        group["bias_correction"] = check_bool(owner, "bias_correction", group["bias_correction"])

    def _rule(self, group: dict[str, Any]) -> UpdateRule:
        xp, t = self._xp, self.t
        lr, b1, b2, eps, wd = group["lr"], group["beta1"], group["beta2"], group["eps"], group["weight_decay"]
        # per-step constants: with bc1 = 1 - b1^t, bc2 = 1 - b2^t,
        # w -= lr * (m / bc1) / (sqrt(v / bc2) + eps) = step * m / (sqrt(v) + eps * sqrt(bc2)),
        # step = lr * sqrt(bc2) / bc1: the bias corrections cost no pass over the arrays
        if group["bias_correction"]:
            sqrt_bc2 = math.sqrt(1.0 - b2**t)
            step_size, eps_hat = lr * sqrt_bc2 / (1.0 - b1**t), eps * sqrt_bc2
        else:
            step_size, eps_hat = lr, eps
        one_minus_b1, one_minus_b2 = 1.0 - b1, 1.0 - b2
        shrink = 1.0 - lr * wd
        decoupled = self._decoupled

        def update(w: Array, g: Array, m: Array, v: Array, decay: bool) -> None:
            if decay:
                if decoupled:
                    w *= shrink
                else:
                    g += wd * w
            m *= b1
            m += one_minus_b1 * g
            flush_subnormal(m, xp)
            sq = g * g
            sq *= one_minus_b2
            v *= b2
            v += sq
            flush_subnormal(v, xp)
            d = xp.sqrt(v)
            d += eps_hat
            d = m / d
            d *= step_size
            w -= d

        # on a GPU one fused launch does the dozen passes of `update`
        scalars = {"b1": b1, "one_minus_b1": one_minus_b1, "b2": b2, "one_minus_b2": one_minus_b2,
                   "eps_hat": eps_hat, "step_size": step_size, "wd": wd, "shrink": shrink}  # fmt: skip
        return UpdateRule("adam", update, scalars, DECOUPLED_DECAY if decoupled else COUPLED_DECAY)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): before the Adam update,
    w -= lr * weight_decay * w, for weights only unless the group sets decay_all=True.
    """

    name = "adamw"
    _decoupled = True

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        bias_correction: bool = True,
        weight_decay: float = 0.01,
        betas: tuple[float, float] | None = None,
        regularizers: Sequence[Regularizer] | None = None,
        clip_norm: float | None = None,
        clip_value: float | None = None,
    ):
        super().__init__(
            params, lr, beta1, beta2, eps, bias_correction, weight_decay, betas,
            regularizers, clip_norm, clip_value,
        )
