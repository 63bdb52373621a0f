"""Parameter groups: what an optimizer is given (Parameters, or dicts of them with their own
hyper-parameters) turned into checked group dicts, each with its `lr_scale` (see optimizer.py)."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from xnet.checks import check_bool
from xnet.nn.module import Module
from xnet.nn.parameter import Parameter
from xnet.optim.checks import check_list_of, check_nonneg
from xnet.optim.regularizers import Regularizer

ParamsArg = Iterable[Parameter] | Iterable[dict[str, Any]]


class ParamGroups:
    """The part of Optimizer that builds its param groups (`_make_group`), mixed into it."""

    _lr: float
    defaults: dict[str, Any]

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate (and normalise) a group's hyper-parameters; raise ValueError naming them."""

    def _make_group(self, spec: dict[str, Any]) -> dict[str, Any]:
        owner = type(self).__name__
        valid = ("params", "lr", "lr_scale", *self.defaults)
        unknown = [k for k in spec if k not in valid]
        if unknown:
            raise ValueError(
                f"{owner}: unknown param-group key(s) {unknown}; valid keys: {', '.join(valid)}"
            )
        params = _as_list(spec["params"], owner)
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"{owner}: params must be Parameters, got {type(p).__name__}")
        group = {**self.defaults, **{k: v for k, v in spec.items() if k not in ("params", "lr")}}
        if "lr" in spec and "lr_scale" in spec:
            raise ValueError(f"{owner}: a param group gives both 'lr' and 'lr_scale'; give one")
        if "lr" in spec:
            glr = check_nonneg(owner, "lr (param group)", spec["lr"])
            if self._lr == 0 and glr != 0:
                raise ValueError(
                    f"{owner}: a param group's lr={glr!r} cannot be kept relative to base lr=0; "
                    "give the group 'lr_scale' instead"
                )
            group["lr_scale"] = glr / self._lr if self._lr else 1.0
        else:
            group["lr_scale"] = check_nonneg(owner, "lr_scale", group.get("lr_scale", 1.0))
        group["decay_all"] = check_bool(owner, "decay_all", group["decay_all"])
        self._check_group(group)
        group["lr"] = self._lr * group["lr_scale"]
        group["params"] = params
        return group


def _as_list(params: Any, owner: str) -> list[Any]:
    """The items of an iterable of parameters; TypeError with a hint for the usual slips."""
    if inspect.ismethod(params) or inspect.isfunction(params):
        raise TypeError(f"{owner}: params must be an iterable of Parameters, got the method "
                        f"{getattr(params, '__qualname__', params)!r}; did you mean model.parameters()?")
    if isinstance(params, Module):
        raise TypeError(f"{owner}: params must be an iterable of Parameters, got the model "
                        f"{type(params).__name__} itself; did you mean model.parameters()?")
    if isinstance(params, (str, bytes)) or not isinstance(params, Iterable):
        raise TypeError(f"{owner}: params must be an iterable of Parameters (e.g. model.parameters()), "
                        f"got {type(params).__name__}")
    return list(params)


def _regularizers(regularizers: Any, owner: str) -> list[Regularizer]:
    """None, one regulariser or an iterable of them -> a list (one is taken as [it], as a Keras user may give)."""
    if regularizers is None:
        return []
    return check_list_of(owner, "regularizers", regularizers, Regularizer, "L1/L2 objects", "[L2(1e-4)]")


def _groups(params: ParamsArg, owner: str) -> list[dict[str, Any]]:
    """Normalise `params` (Parameters, or dicts with "params") into a list of group dicts."""
    if isinstance(params, Parameter):
        raise TypeError(f"{owner}: params must be an iterable of Parameters (e.g. "
                        "model.parameters()), got a single Parameter")
    if isinstance(params, dict):
        params = [params]
    items = _as_list(params, owner)
    if not items:
        raise ValueError(f"{owner}: got no parameters to optimize (params is empty)")
    if all(isinstance(x, dict) for x in items):
        for g in items:
            if "params" not in g:
                raise ValueError(f"{owner}: every param group needs a 'params' key, got {sorted(g)}")
        return [
            dict(g, params=[g["params"]]) if isinstance(g["params"], Parameter) else dict(g)
            for g in items
        ]
    if any(isinstance(x, dict) for x in items):
        raise TypeError(f"{owner}: params mixes Parameters and param-group dicts; use one kind")
    return [{"params": items}]
