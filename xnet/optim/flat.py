"""Flat buffers: the parameters of an optimizer's group as views into one array, their gradients into another.

With every weight of a group in one contiguous array, an update is one pass over it (one fused
kernel on a GPU, one split over the CPU threads) instead of one per parameter; so are
`zero_grad`, gradient clipping and, across processes, a gradient all-reduce. The layers never
notice: `p.data` and `p.grad` stay arrays of the parameter's shape, which are now views, and the
layers' in-place updates (`p.grad += ...`) write into the flat buffers.

Within a buffer the weights that regularisers and weight decay touch (`p.regularize`) come first,
so those apply to one leading slice. Anything that rebinds `p.data` or `p.grad` to a new array
(`Module.to`, user code) breaks the link; the optimizer sees it (`intact`) and flattens again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xnet.backends import Array
from xnet.nn.parameter import Parameter, holds
from xnet.optim.arrays import namespace_of


@dataclass
class Part:
    """What an optimizer's update sees of one parameter or of one slice of a flat group: the same fields."""

    data: Array
    grad: Array
    regularize: bool


def _placement(a: Array) -> tuple[Any, ...]:
    """What two arrays must share to live in one buffer: library, dtype and device."""
    return type(a), a.dtype, getattr(a, "device", None)


def can_flatten(params: list[Parameter]) -> bool:
    """Whether `params` can share one buffer: at least two, all of one library, dtype and device."""
    return len(params) > 1 and len({_placement(p.data) for p in params}) == 1


class FlatGroup:
    """One group's parameters as views into `data` (N,) and their gradients as views into `grad` (N,)."""

    def __init__(self, params: list[Parameter]):
        self.params = list(params)
        # regularised weights first: weight decay and L1/L2 then touch data[:regularized]
        order = [p for p in params if p.regularize] + [p for p in params if not p.regularize]
        self.regularized = sum(p.size for p in order if p.regularize)
        first = order[0].data
        xp = namespace_of(first)
        self.xp = xp
        size = sum(p.size for p in order)
        self.data = xp.empty((size,), dtype=first.dtype, device=getattr(first, "device", None))
        self.grad = xp.empty((size,), dtype=first.dtype, device=getattr(first, "device", None))
        self._slices: dict[int, slice] = {}
        start = 0
        for p in order:
            s = self._slices[id(p)] = slice(start, start + p.size)
            start = s.stop
            self.data[s] = xp.reshape(p.data, (p.size,))
            self.grad[s] = xp.reshape(p.grad, (p.size,))
            p.data, p.grad = self.view(self.data, p), self.view(self.grad, p)
        self._bound = [(p.data, p.grad) for p in self.params]
        # parts() per `split`: the same views every step, made once (dropped when the gradients move)
        self._parts: dict[bool, tuple[list[Array], tuple[list[Part], list[list[Array]]]]] = {}

    def view(self, flat: Array, p: Parameter) -> Array:
        """`p`'s part of a flat array of this group (its data, gradient or an optimizer state), shaped as `p`."""
        return self.xp.reshape(flat[self._slices[id(p)]], p.shape)

    def views(self, flat: Array) -> list[Array]:
        """Every parameter's part of `flat`, in the group's parameter order."""
        return [self.view(flat, p) for p in self.params]

    def share_grad(self, buffer: Array) -> None:
        """Keep the gradients in `buffer` (N,) from now on, values kept: e.g. a slice of one array that a
        data-parallel run all-reduces (xnet/parallel/gradients.py)."""
        buffer[...] = self.grad
        self.grad = buffer
        for p in self.params:
            p.grad = self.view(self.grad, p)
        self._bound = [(p.data, p.grad) for p in self.params]
        self._parts = {}

    def intact(self) -> bool:
        """Whether every parameter still holds the views it was given (nothing rebound them)."""
        for p, (d, g) in zip(self.params, self._bound, strict=True):  # noqa: SIM110 (no generator: runs every step)
            if p.data is not d or p.grad is not g:
                return False
        return True

    def ready(self) -> bool:
        """intact(), with the zeros of cleared gradients written first (as an update that reads the buffer needs)."""
        return holds(self.params, self._bound)

    def parts(self, states: list[Array], split: bool) -> tuple[list[Part], list[list[Array]]]:
        """(parts, their states) for an update: the whole buffer, or its regularised and other slices."""
        made = self._parts.get(split)
        if made is not None and made[0] is states:
            return made[1]
        self._parts[split] = (states, self._make_parts(states, split))
        return self._parts[split][1]

    def _make_parts(self, states: list[Array], split: bool) -> tuple[list[Part], list[list[Array]]]:
        n = self.regularized
        if not split or n in (0, self.data.shape[0]):
            reg = n > 0
            return [Part(self.data, self.grad, reg)], [list(states)]
        head, tail = slice(0, n), slice(n, None)
        parts = [Part(self.data[head], self.grad[head], True), Part(self.data[tail], self.grad[tail], False)]
        return parts, [[s[head] for s in states], [s[tail] for s in states]]
