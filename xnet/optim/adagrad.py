"""Adagrad: per-element step sizes shrinking with the sum of squared gradients."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xnet.backends import Array
from xnet.backends.fast_paths import COUPLED_DECAY
from xnet.nn.parameter import Parameter
from xnet.optim.checks import check_nonneg, check_positive
from xnet.optim.groups import ParamsArg
from xnet.optim.optimizer import Optimizer, UpdateRule
from xnet.optim.regularizers import Regularizer


class Adagrad(Optimizer):
    """Adagrad: G += g^2;  w -= lr * g / (sqrt(G) + eps), with G starting at initial_accumulator_value.

    initial_accumulator_value is 0 as in PyTorch (Keras starts at 0.1, which makes the first steps
    smaller). weight_decay (coupled, weights only unless decay_all) adds weight_decay * w to g first.
    """

    name = "adagrad"
    state_names = ("sum_sq",)

    def __init__(
        self,
        params: ParamsArg,
        lr: float = 0.01,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        regularizers: Sequence[Regularizer] | None = None,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        initial_accumulator_value: float = 0.0,
    ):
        defaults = {"eps": eps, "weight_decay": weight_decay, "initial_accumulator_value": initial_accumulator_value}
        super().__init__(params, lr, defaults, regularizers, clip_norm, clip_value)

    def _check_group(self, group: dict[str, Any]) -> None:
        group["eps"] = check_positive("Adagrad", "eps", group["eps"])
        group["weight_decay"] = check_nonneg("Adagrad", "weight_decay", group["weight_decay"])
        group["initial_accumulator_value"] = check_nonneg(
            "Adagrad", "initial_accumulator_value", group["initial_accumulator_value"]
        )

    def _init_state(self, group: dict[str, Any], p: Parameter) -> list[Array]:
        G = self._xp.zeros_like(p.data)
        if group["initial_accumulator_value"]:
            G += group["initial_accumulator_value"]
        return [G]

    def _rule(self, group: dict[str, Any]) -> UpdateRule:
        xp = self._xp
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]

        def update(w: Array, g: Array, G: Array, decay: bool) -> None:
            if decay:
                g += wd * w
            G += g * g
            d = xp.sqrt(G)
            d += eps
            d = g / d
            d *= lr
            w -= d

        return UpdateRule("adagrad", update, {"lr": lr, "eps": eps, "wd": wd}, COUPLED_DECAY)
