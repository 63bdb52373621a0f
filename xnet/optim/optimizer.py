"""Optimizer: the base of every optimizer. Parameter groups, step order, state and checkpoints.

What `step()` does, in this order (documented because users of Keras and PyTorch expect it):
  1. each regulariser in `regularizers` adds its gradient into `p.grad` (weights only by default);
  2. gradients are clipped: by value (`clip_value`), then by global norm (`clip_norm`), so the
     clipping sees the regulariser terms, as when Keras adds them to the loss;
  3. each group is updated with its own hyper-parameters; coupled weight decay (SGD, Adagrad,
     RMSprop, Adam `weight_decay`) is added to the gradient inside the update, after clipping,
     as in PyTorch; AdamW's decoupled decay shrinks the weights directly.
`p.grad` is modified in place by steps 1 to 3: after `step()` it holds the gradient the update used.

Learning rates: `opt.lr` is the base rate. Each group keeps `lr_scale` (1.0 unless the group
gave its own "lr", which is stored as a ratio to the base), and `group["lr"] = opt.lr * lr_scale`
is refreshed whenever `opt.lr` is set, so a schedule setting `opt.lr` every step keeps the
groups' ratios.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from xnet.backends import Array
from xnet.checks import check_bool, check_int
from xnet.nn.module import Module
from xnet.nn.parameter import Parameter
from xnet.optim.arrays import namespace_of, to_device_like, to_host
from xnet.optim.checks import check_list_of, check_nonneg, check_positive
from xnet.optim.clipping import _clip_by_norm, _clip_by_value
from xnet.optim.flat import FlatGroup, Part, can_flatten
from xnet.optim.regularizers import Regularizer, total_penalty

ParamsArg = Iterable[Parameter] | Iterable[dict[str, Any]]
_INF = float("inf")


class Optimizer:
    """Base class. Subclasses set `name`, `state_names`, implement `_check_group`,
    `_init_state` and `_update_group`, and pass their hyper-parameter defaults up.
    """

    name = "optimizer"
    state_names: tuple[str, ...] = ()

    def __init__(
        self,
        params: ParamsArg,
        lr: float,
        defaults: dict[str, Any],
        regularizers: Sequence[Regularizer] | None = None,
        clip_norm: float | None = None,
        clip_value: float | None = None,
    ):
        owner = type(self).__name__
        self._lr = check_nonneg(owner, "lr", lr)
        self.defaults = {"decay_all": False, **defaults}
        self.regularizers = _regularizers(regularizers, owner)
        self.clip_norm = None if clip_norm is None else check_positive(owner, "clip_norm", clip_norm)
        self.clip_value = (
            None if clip_value is None else check_positive(owner, "clip_value", clip_value)
        )
        self.param_groups: list[dict[str, Any]] = [self._make_group(g) for g in _groups(params, owner)]
        self._params: list[Parameter] = [p for g in self.param_groups for p in g["params"]]
        if not self._params:
            raise ValueError(f"{owner}: got no parameters to optimize (params is empty)")
        if len({id(p) for p in self._params}) != len(self._params):
            raise ValueError(f"{owner}: a parameter appears more than once in params")
        self._xp = namespace_of(self._params[0].data)
        # per group, per parameter: the list of state arrays (a list, not a dict, for speed); in a
        # flat group they are views into one flat array per state (self._flat_state)
        self._flat: list[FlatGroup | None] = [None] * len(self.param_groups)
        self._flat_state: list[list[Array]] = [[] for _ in self.param_groups]
        self._state: list[list[list[Array]]] = [
            [self._init_state(g, p) for p in g["params"]] for g in self.param_groups
        ]
        for i in range(len(self.param_groups)):
            self._flatten(i)
        self.t = 0  # number of steps taken
        self.last_grad_norm: Array | float | None = None  # set by step() when clip_norm is used

    # -- groups ------------------------------------------------------------------------------

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

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate (and normalise) a group's hyper-parameters; raise ValueError naming them."""

    # -- flat buffers (flat.py) --------------------------------------------------------------------

    def _flatten(self, i: int) -> None:
        """Put group i's parameters, gradients and states into flat buffers (when they can share one)."""
        group, states = self.param_groups[i], self._state[i]
        params = group["params"]
        if not can_flatten(params):
            self._flat[i] = None
            return
        flat = self._flat[i] = FlatGroup(params)
        # the states keep their values: copied into one flat array per state, on the buffer's device
        self._flat_state[i] = self._init_state(group, Part(flat.data, flat.grad, True))
        for j, full in enumerate(self._flat_state[i]):
            for p, arrays in zip(params, states, strict=True):
                flat.view(full, p)[...] = to_device_like(to_host(arrays[j]), flat.data) if arrays else 0
        self._state[i] = [[flat.view(full, p) for full in self._flat_state[i]] for p in params]

    def _parts(self, i: int, split: bool) -> tuple[list[Any], list[list[Array]]]:
        """Group i as (parameters or flat slices, their states): what `_update_group` iterates over."""
        flat = self._flat[i]
        if flat is not None and not flat.intact():  # something rebound a parameter's array
            self._flatten(i)
            flat = self._flat[i]
        if flat is None:
            return self.param_groups[i]["params"], self._state[i]
        return flat.parts(self._flat_state[i], split)

    def _split(self, group: dict[str, Any]) -> bool:
        """Whether weight decay treats the group's regularised weights apart from the rest."""
        return bool(group.get("weight_decay")) and not group["decay_all"]

    def _init_state(self, group: dict[str, Any], p: Parameter) -> list[Array]:
        """The state arrays of one parameter (on its device, its dtype)."""
        return [self._xp.zeros_like(p.data) for _ in self.state_names]

    def _update_group(
        self, group: dict[str, Any], params: list[Parameter], states: list[list[Array]]
    ) -> None:
        """Update every parameter of one group in place, using `p.grad` and `self.t`."""
        raise NotImplementedError

    # -- public API ------------------------------------------------------------------------------

    @property
    def lr(self) -> float:
        """The base learning rate; each group uses lr * its lr_scale."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        # a cheap check first: the trainer sets this every step
        try:
            ok = value >= 0 and value != _INF
        except TypeError:
            ok = False
        if not ok:
            check_nonneg(type(self).__name__, "lr", value)
        self._lr = value = float(value)
        for g in self.param_groups:
            g["lr"] = value * g["lr_scale"]

    def parameters(self) -> list[Parameter]:
        """Every parameter this optimizer updates, in group order."""
        return list(self._params)

    def place_gradients(self, buffer: Array) -> list[Array]:
        """Keep every parameter's gradient in `buffer` (P,), P the parameters' total size, values kept;
        returns the gradient arrays (views into `buffer`) in `parameters()` order.

        Each group takes the next slice: a flat group moves its gradient buffer there, the parameters
        of another get views. So one operation on `buffer` (a data-parallel all-reduce) covers them all.
        """
        total = sum(p.size for p in self._params)
        if tuple(buffer.shape) != (total,):
            raise ValueError(
                f"{type(self).__name__}.place_gradients: buffer must have shape ({total},), got {tuple(buffer.shape)}"
            )
        start = 0
        for i, group in enumerate(self.param_groups):
            params = group["params"]
            size = sum(p.size for p in params)
            part = buffer[start : start + size]
            flat = self._flat[i]
            if flat is not None and not flat.intact():
                self._flatten(i)
                flat = self._flat[i]
            if flat is not None:
                flat.share_grad(part)
            else:
                offset = 0
                for p in params:
                    view = self._xp.reshape(part[offset : offset + p.size], p.shape)
                    view[...] = p.grad
                    p.grad = view
                    offset += p.size
            start += size
        return [p.grad for p in self._params]

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero, in place (one pass per flat group)."""
        for i in range(len(self.param_groups)):
            for p in self._parts(i, split=False)[0]:
                p.grad[...] = 0

    def step(self) -> None:
        """One update of every parameter from its `.grad` (see the module docstring for order)."""
        if self.regularizers or self.clip_value is not None or self.clip_norm is not None:
            # what regularisers and clipping see: the flat slices (weights apart), or the parameters
            parts = [p for i in range(len(self.param_groups)) for p in self._parts(i, split=True)[0]]
            for r in self.regularizers:
                r.apply(parts)
            # the unchecked forms: the thresholds were checked in __init__, the params are ours
            if self.clip_value is not None:
                _clip_by_value(parts, self.clip_value)
            if self.clip_norm is not None:
                self.last_grad_norm = _clip_by_norm(parts, self.clip_norm)
        self.t += 1
        for i, group in enumerate(self.param_groups):
            self._update_group(group, *self._parts(i, self._split(group)))

    def penalty(self) -> Array | float:
        """Sum of the regularisers' penalties over this optimizer's parameters, a 0-d device
        array to add to the data loss when reporting (0.0 without regularisers). Weight decay
        is not included (neither PyTorch nor Keras report it).
        """
        return total_penalty(self.regularizers, self._params)

    def hyperparameters(self, group: dict[str, Any]) -> dict[str, Any]:
        """A group's hyper-parameters without its parameters (JSON-able)."""
        return {k: v for k, v in group.items() if k != "params"}

    def config(self) -> dict[str, Any]:
        """JSON-able description: type, lr, the first group's hyper-parameters, extras."""
        cfg = {"type": self.name, "lr": self._lr}
        cfg.update({k: v for k, v in self.hyperparameters(self.param_groups[0]).items()
                    if k not in ("lr", "lr_scale")})
        if self.regularizers:
            cfg["regularizers"] = [r.config() for r in self.regularizers]
        if self.clip_norm is not None:
            cfg["clip_norm"] = self.clip_norm
        if self.clip_value is not None:
            cfg["clip_value"] = self.clip_value
        return cfg

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"

    # -- checkpoints -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Host copies of the state: {"type", "t", "lr", "groups": [hyper-parameters per group],
        "state": [{state name: np.ndarray} per parameter, in group order]}. Arrays are NumPy and
        everything else plain Python, so a checkpoint (.npz + JSON header) can hold it.
        """
        per_param = [
            {n: to_host(a) for n, a in zip(self.state_names, arrays, strict=False)}
            for states in self._state
            for arrays in states
        ]
        return {
            "type": self.name,
            "t": int(self.t),
            "lr": float(self._lr),
            "groups": [self.hyperparameters(g) for g in self.param_groups],
            "state": per_param,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (onto the parameters' device and dtype), so training
        resumes exactly. A mismatch (optimizer type, group or parameter count, shapes, a missing
        key, a bad value) raises ValueError or TypeError listing the problems and changes nothing.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        t, lr, groups, per_param = self._checked_state(state, owner)
        # the parameters may have moved (model.to) since this optimizer was built
        self._xp = namespace_of(self._params[0].data)
        # build the new groups and state arrays first: anything failing here leaves self unchanged
        merged_groups, new_states = [], []
        flat = iter(per_param)
        for i, (group, saved_group) in enumerate(zip(self.param_groups, groups, strict=True)):
            merged = dict(group)
            merged.update({k: v for k, v in saved_group.items() if k in self.defaults or k == "lr_scale"})
            merged["lr_scale"] = check_nonneg(owner, "lr_scale", merged["lr_scale"])
            merged["decay_all"] = check_bool(owner, "decay_all", merged["decay_all"])
            try:
                self._check_group(merged)
            except (TypeError, ValueError) as e:
                raise type(e)(f"{owner}: saved param group {i}: {e}") from None
            states = []
            for p in group["params"]:
                saved = next(flat)
                arrays = self._init_state(merged, p)
                for j, n in enumerate(self.state_names[: len(arrays)]):
                    if n in saved:
                        arrays[j] = to_device_like(saved[n], p.data)
                states.append(arrays)
            merged_groups.append(merged)
            new_states.append(states)
        # everything is checked and built: apply it all
        for group, merged in zip(self.param_groups, merged_groups, strict=True):
            group.update({k: v for k, v in merged.items() if k != "params"})
        self._state = new_states
        for i in range(len(self.param_groups)):
            self._flatten(i)  # the restored states into flat arrays (the parameters too, if they moved)
        self.t = t
        self.lr = lr

    def _checked_state(self, state: Any, owner: str) -> tuple[int, float, list[dict], list[dict]]:
        """(t, lr, groups, per-parameter state) of a `state_dict()` after checking it fits; nothing is changed."""
        if not isinstance(state, dict):
            raise TypeError(f"{owner}: expected the dict that state_dict() returns, got {type(state).__name__}")
        missing = [k for k in ("type", "t", "lr", "groups", "state") if k not in state]
        if missing:
            raise ValueError(f"{owner}: state lacks key(s) {missing}; expected the dict that state_dict() returns")
        if state["type"] != self.name:
            raise ValueError(f"{owner}: state is for optimizer {state['type']!r}, not {self.name!r}")
        t = check_int(owner, "t (steps taken)", state["t"], minimum=0)
        lr = check_nonneg(owner, "lr", state["lr"])
        groups, per_param = state["groups"], state["state"]
        for key, value in (("groups", groups), ("state", per_param)):
            if not isinstance(value, (list, tuple)) or not all(isinstance(d, dict) for d in value):
                raise TypeError(f"{owner}: state[{key!r}] must be a list of dicts, got {value!r:.80}")
        problems = []
        if len(groups) != len(self.param_groups):
            problems.append(f"{len(groups)} param groups saved, {len(self.param_groups)} here")
        if len(per_param) != len(self._params):
            problems.append(f"{len(per_param)} parameters saved, {len(self._params)} here")
        else:
            for i, (p, saved) in enumerate(zip(self._params, per_param, strict=True)):
                for n, a in saved.items():
                    if tuple(np.shape(a)) != p.shape:
                        problems.append(f"parameter {i} ({p.name or '?'}) {n}: expected "
                                        f"{p.shape}, got {tuple(np.shape(a))}")
                    elif isinstance(a, np.ndarray) and a.dtype.kind not in "biuf":
                        problems.append(f"parameter {i} ({p.name or '?'}) {n}: expected numbers, got dtype {a.dtype}")
        if problems:
            raise ValueError(f"{owner}: state does not fit this optimizer: " + "; ".join(problems))
        return t, lr, list(groups), list(per_param)


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
