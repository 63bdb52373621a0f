"""Stochastic gradient descent: plain, with momentum, and Nesterov momentum."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xnet.backends import Array
from xnet.backends.fast_paths import COUPLED_DECAY
from xnet.checks import check_bool
from xnet.nn.parameter import Parameter
from xnet.optim.arrays import flush_subnormal
from xnet.optim.checks import check_nonneg, check_unit
from xnet.optim.groups import ParamsArg
from xnet.optim.optimizer import Optimizer, UpdateRule
from xnet.optim.regularizers import Regularizer


class SGD(Optimizer):
    """SGD. With g = grad (+ weight_decay * w for weights):

    plain:     w -= lr * g
    momentum:  v = mu * v - lr * g;  w += v
    Nesterov:  v = mu * v - lr * g;  w += mu * v - lr * g   (the usual "look-ahead" form)

    The velocity holds lr, so a changing lr affects only new gradients; with a constant lr this
    equals PyTorch's form (v' = mu v' + g; w -= lr v'). Weight decay is coupled (an L2 term in
    the gradient) and touches only weights unless the group sets decay_all=True.
    """

    name = "sgd"
    state_names = ("velocity",)

    def __init__(
        self,
        params: ParamsArg,
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        regularizers: Sequence[Regularizer] | None = None,
        clip_norm: float | None = None,
        clip_value: float | None = None,
    ):
        defaults = {"momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay}
        super().__init__(params, lr, defaults, regularizers, clip_norm, clip_value)

    def _check_group(self, group: dict[str, Any]) -> None:
        group["momentum"] = check_unit("SGD", "momentum", group["momentum"])
        group["weight_decay"] = check_nonneg("SGD", "weight_decay", group["weight_decay"])
        group["nesterov"] = check_bool("SGD", "nesterov", group["nesterov"])
        if group["nesterov"] and group["momentum"] == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0, got momentum=0.0")

    def _init_state(self, group: dict[str, Any], p: Parameter) -> list[Array]:
        return [self._xp.zeros_like(p.data)] if group["momentum"] > 0 else []

    def _rule_key(self, group: dict[str, Any]) -> tuple[Any, ...]:
        return group["lr"], group["momentum"], group["weight_decay"], group["nesterov"]

    def _rule(self, group: dict[str, Any]) -> UpdateRule:
        xp = self._xp
        lr, mu, wd, nesterov = group["lr"], group["momentum"], group["weight_decay"], group["nesterov"]

        def plain(w: Array, g: Array, decay: bool) -> None:
            if decay:
                g += wd * w
            w -= lr * g

        def momentum(w: Array, g: Array, v: Array, decay: bool) -> None:
            if decay:
                g += wd * w
            d = lr * g
            v *= mu
            v -= d
            flush_subnormal(v, xp)
            if nesterov:
                w -= d
                w += mu * v
            else:
                w += v

        # two to five passes over each array: too little work to split over the CPU threads, as
        # Adam's dozen passes are (arrays.each_part); on a GPU one fused launch does them
        if mu > 0:  # the groups with momentum, and only they, keep a velocity (_init_state)
            scalars = {"lr": lr, "mu": mu, "wd": wd, "nesterov": nesterov}
            return UpdateRule("sgd_momentum", momentum, scalars, COUPLED_DECAY, split=False)
        return UpdateRule("sgd", plain, {"lr": lr, "wd": wd}, COUPLED_DECAY, split=False)
