"""How an optimizer keeps each group in flat buffers (flat.py) and hands `_update_group` the parts
to update: the group's flat slices where it has a buffer, else its parameters one by one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xnet.backends import Array, Backend
from xnet.nn.parameter import Parameter, clear_grads, write_cleared_grads
from xnet.optim.arrays import namespace_of, to_device_like, to_host
from xnet.optim.flat import FlatGroup, Part, can_flatten


class FlatGroups:
    """The part of Optimizer that flattens its groups and places their gradients, mixed into it."""

    param_groups: list[dict[str, Any]]
    _params: list[Parameter]
    _flat: list[FlatGroup | None]
    _flat_state: list[list[Array]]
    _state: list[list[list[Array]]]
    _xp: Any
    ops: Backend
    _init_state: Callable[[dict[str, Any], Parameter], list[Array]]  # Optimizer's
    _find_ops: Callable[[], Backend]  # Optimizer's
    _bound_kernels: dict  # Optimizer's: the backend's kernels bound to the arrays

    def _flatten(self, i: int) -> None:
        """Put group i's parameters, gradients and states into flat buffers (when they can share one)."""
        group, states = self.param_groups[i], self._state[i]
        params = group["params"]
        self._bound_kernels.clear()  # kernels bound to the old buffers (or backend) go with them
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
        # the parts may be flat arrays, not p.grad: cleared gradients get their zeros first (ready does it)
        if flat is None:
            write_cleared_grads(self.param_groups[i]["params"])
        elif not flat.ready():  # something rebound a parameter's array
            # perhaps onto another backend (Module.to): its namespace and fast paths from now on
            self._xp, self.ops = namespace_of(self._params[0].data), self._find_ops()
            self._flatten(i)
            flat = self._flat[i]
        if flat is None:
            return self.param_groups[i]["params"], self._state[i]
        return flat.parts(self._flat_state[i], split)

    def _split(self, group: dict[str, Any]) -> bool:
        """Whether weight decay treats the group's regularised weights apart from the rest."""
        return bool(group.get("weight_decay")) and not group["decay_all"]

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
        self._bound_kernels.clear()  # bound to the gradient arrays that move now
        for i, group in enumerate(self.param_groups):
            params = group["params"]
            size = sum(p.size for p in params)
            part = buffer[start : start + size]
            flat = self._flat[i]
            if flat is not None and not flat.intact():
                self._flatten(i)
                flat = self._flat[i]
            if flat is not None:
                write_cleared_grads(params)  # the buffer is copied as one array
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
        """Make every parameter's gradient zero (Parameter.clear_grad: the next backward writes it
        instead of adding to zeros; what no backward writes is zeroed before the step reads it)."""
        clear_grads(self._params)

