"""Optimizer checkpoints: `state_dict` (host copies of the state) and `load_state_dict`, which checks
everything before it changes anything, so a checkpoint that does not fit leaves the optimizer as it was."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xnet.backends import Array
from xnet.checks import check_bool, check_int
from xnet.nn.parameter import Parameter
from xnet.optim.arrays import namespace_of, to_device_like, to_host
from xnet.optim.checks import check_nonneg


class CheckpointState:
    """The part of Optimizer that saves and restores its state, mixed into it."""

    name: str
    state_names: tuple[str, ...]
    defaults: dict[str, Any]
    param_groups: list[dict[str, Any]]
    _params: list[Parameter]
    _state: list[list[list[Array]]]
    _lr: float
    _xp: Any
    ops: Any
    t: int

    # Optimizer's own methods (optimizer.py, groups.py, flat_groups.py)
    _check_group: Callable[[dict[str, Any]], None]
    _init_state: Callable[[dict[str, Any], Parameter], list[Array]]
    _flatten: Callable[[int], None]
    _find_ops: Callable[[], Any]

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
        self.ops = self._find_ops()
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


