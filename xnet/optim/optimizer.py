"""Optimizer: the base of every optimizer: step order, learning rates, the update loop.

Its parts live beside it: param groups (groups.py), flat buffers (flat_groups.py, flat.py) and
checkpoint state (checkpoint.py), mixed into Optimizer; each optimizer's own file (adam.py...)
holds its Array API reference body and names the backend fast path that does the same in one launch.

What `step()` does, in this order (documented because users of Keras and PyTorch expect it):
  1. each regulariser in `regularizers` adds its gradient into `p.grad` (weights only by default);
  2. gradients are clipped: by value (`clip_value`), then by global norm (`clip_norm`), so the
     clipping sees the regulariser terms, as when Keras adds them to the loss;
  3. each group is updated with its own hyper-parameters; coupled weight decay (SGD, Adagrad,
     RMSprop, Adam `weight_decay`) is added to the gradient inside the update, after clipping,
     as in PyTorch; AdamW's decoupled decay shrinks the weights directly.
`p.grad` is modified in place by steps 1 to 3: after `step()` it holds the gradient the update used.

State numerics: a state value that decays (Adam's m and v, SGD's velocity, RMSprop's mean square,
Adadelta's two averages, the Adam family's moments, Lion's momentum) is set to +0 as soon as it is
computed, before the update uses it, when its magnitude is below the smallest normal number of its
dtype (NaN and inf kept): on x86 subnormals cost a microcode assist per operation, and a state whose
gradient stays 0 reaches them after ~800 steps. Every implementation does it at the same point
(arrays.flush_subnormal says why and how); gradients and parameters are never flushed.

Learning rates: `opt.lr` is the base rate. Each group keeps `lr_scale` (1.0 unless the group
gave its own "lr", which is stored as a ratio to the base), and `group["lr"] = opt.lr * lr_scale`
is refreshed whenever `opt.lr` is set, so a schedule setting `opt.lr` every step keeps the
groups' ratios.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from xnet.backends import Array, Backend, backend_of
from xnet.backends.fast_paths import NO_DECAY
from xnet.nn.parameter import Parameter
from xnet.optim.arrays import each_part, namespace_of
from xnet.optim.checkpoint import CheckpointState
from xnet.optim.checks import check_nonneg, check_positive
from xnet.optim.clipping import _clip_by_norm, _clip_by_value
from xnet.optim.flat import FlatGroup
from xnet.optim.flat_groups import FlatGroups
from xnet.optim.groups import ParamGroups, ParamsArg, _groups, _regularizers
from xnet.optim.regularizers import Regularizer, total_penalty

_INF = float("inf")


@dataclass
class UpdateRule:
    """How one group's parameters are updated at this step: the backend's fast path, else the reference.

    `kernel` names the backend's fast path ("adam" for `adam_update`, see xnet/backends/fast_paths.py),
    reached as `ops.optimizer_kernel(kernel, arrays, {**scalars, "decay": mode})` (what `adam_update`
    and its siblings call, a Python call less every step) and True when it did the update; or None
    for an optimizer that no backend has a kernel for;
    `reference(*arrays, decay)` is the Array API body, in place, with `decay` a bool. `arrays` are
    (param, grad, *state). `decay_mode` is what the kernel gets as `decay` where weight decay applies
    (COUPLED_DECAY or DECOUPLED_DECAY). `split`: whether large NumPy
    updates may run in row blocks over the CPU threads (arrays.each_part).
    """

    kernel: str | None
    reference: Callable[..., None]
    scalars: dict[str, Any] = field(default_factory=dict)
    decay_mode: int = NO_DECAY
    split: bool = True


class Optimizer(ParamGroups, FlatGroups, CheckpointState):
    """Base class. Subclasses set `name`, `state_names`, implement `_check_group`, `_init_state`
    and `_rule` (or `_update_group`), and pass their hyper-parameter defaults up.

    `ops` is the backend the parameters live on (xnet.backends.backend_of), found once and again
    only when the parameters move; updates reach its fused kernels through it.
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
        self.ops = self._find_ops()
        # per group, per parameter: the list of state arrays (a list, not a dict, for speed); in a
        # flat group they are views into one flat array per state (self._flat_state)
        # the backend's kernels bound to this optimizer's arrays (optimizer_kernel's cache): they live
        # and go with the optimizer, and are dropped when its buffers change (_flatten, place_gradients)
        self._bound_kernels: dict = {}
        self._flat: list[FlatGroup | None] = [None] * len(self.param_groups)
        self._flat_state: list[list[Array]] = [[] for _ in self.param_groups]
        self._state: list[list[list[Array]]] = [
            [self._init_state(g, p) for p in g["params"]] for g in self.param_groups
        ]
        for i in range(len(self.param_groups)):
            self._flatten(i)
        self._rules: dict[int, tuple[Any, ...]] = {}  # per group (by id): _current_rule's (key, namespace, rule)
        self.t = 0  # number of steps taken
        self.last_grad_norm: Array | float | None = None  # set by step() when clip_norm is used

    # -- groups ------------------------------------------------------------------------------

    def _find_ops(self) -> Backend:
        """The backend the parameters live on, whose fast paths the updates use (backend_of)."""
        return backend_of(self._params[0].data)

    def _init_state(self, group: dict[str, Any], p: Parameter) -> list[Array]:
        """The state arrays of one parameter (on its device, its dtype)."""
        return [self._xp.zeros_like(p.data) for _ in self.state_names]

    def _rule(self, group: dict[str, Any]) -> UpdateRule:
        """How this step updates the parameters of `group` (its hyper-parameters and `self.t`)."""
        raise NotImplementedError

    def _rule_key(self, group: dict[str, Any]) -> tuple[Any, ...] | None:
        """What `_rule(group)` depends on, for an optimizer whose rule does not change with the step
        (SGD): the rule is then made again only when that changes; None (the default): every step."""
        return None

    def _current_rule(self, group: dict[str, Any]) -> UpdateRule:
        """`_rule(group)`, kept per group while `_rule_key(group)` stays the same."""
        key = self._rule_key(group)
        if key is None:
            return self._rule(group)
        made = self._rules.get(id(group))
        if made is None or made[0] != key or made[1] is not self._xp:
            made = self._rules[id(group)] = (key, self._xp, self._rule(group))
        return made[2]

    def _update_group(
        self, group: dict[str, Any], params: list[Parameter], states: list[list[Array]]
    ) -> None:
        """Update every parameter of one group in place, using `p.grad` and `self.t`: one fused
        launch each where the backend has the kernel for its arrays, else the reference body."""
        rule = self._current_rule(group)
        wd, decay_all, kernel = group.get("weight_decay", 0.0), group["decay_all"], rule.kernel
        for p, state in zip(params, states, strict=True):
            decay = bool(wd) and (decay_all or p.regularize)
            arrays = (p.data, p.grad, *state)
            mode = rule.decay_mode if decay else NO_DECAY
            if kernel is not None and self.ops.optimizer_kernel(
                kernel, arrays, {**rule.scalars, "decay": mode}, self._bound_kernels
            ):
                continue
            if rule.split:
                each_part(rule.reference, arrays, decay)
            else:
                rule.reference(*arrays, decay)

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

