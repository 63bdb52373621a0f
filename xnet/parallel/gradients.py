"""Every parameter's gradient as a view into one flat buffer, so that one all-reduce averages them all."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from xnet.backends import Array, Backend
from xnet.nn.parameter import Parameter, dtype_name


class GradientBuffer:
    """One contiguous array (P + 1,) holding the P gradient values of `params` and one control value.

    Each `p.grad` becomes a view into it, so layers adding into `p.grad` fill the buffer in place
    and nothing is copied per step. The last value carries this rank's stop request (Ctrl-C) in
    the same all-reduce as the gradients, so every rank learns of any rank's request at the same
    step. A gradient replaced by a new array (`load_state_dict` does that) is copied back in and
    rebound before the next all-reduce.
    """

    def __init__(self, params: Sequence[Parameter], backend: Backend):
        if not params:
            raise ValueError("GradientBuffer: params is empty; expected the optimizer's parameters")
        dtypes = {dtype_name(p.data.dtype) for p in params}
        if len(dtypes) != 1:
            raise ValueError(f"GradientBuffer: parameters of one dtype expected, got {sorted(dtypes)}")
        self.params = list(params)
        self.backend = backend
        self.sizes = [math.prod(p.shape) for p in self.params]
        self.count = sum(self.sizes)
        self.flat = backend.zeros((self.count + 1,), dtypes.pop())
        self.views: list[Array] = []
        offset = 0
        for p, n in zip(self.params, self.sizes, strict=True):
            self.views.append(backend.xp.reshape(self.flat[offset : offset + n], p.shape))
            offset += n
        self.rebind()

    def rebind(self) -> None:
        """Make every `p.grad` this buffer's view again, keeping its values, where it was replaced."""
        for p, view in zip(self.params, self.views, strict=True):
            if p.grad is not view:
                self.backend.copy_into(view, p.grad)
                p.grad = view

    def all_reduce(self, weight: float, stop: bool, reduce_sum: Callable[[Array], None]) -> bool:
        """grads := sum over ranks of weight * grads, by one `reduce_sum(flat)`; True when any rank asked to stop."""
        self.rebind()
        grads = self.flat[: self.count]
        if weight != 1.0:
            grads *= weight
        self.flat[self.count] = 1.0 if stop else 0.0
        reduce_sum(self.flat)
        return bool(self.backend.item(self.flat[self.count]) > 0)


def loss_reduction(loss: Any) -> str:
    """How `loss` reduces over a batch: "mean" (xnet's losses today) or "sum".

    With "mean", each rank's gradient is of its shard's mean, and the global batch's mean is the
    mean of the ranks' (their shards are equal): the gradients are averaged. With "sum" the
    global loss is the sum of the ranks' and so are the gradients.
    """
    reduction = getattr(loss, "reduction", "mean")
    return reduction if reduction in ("mean", "sum") else "mean"


__all__ = ["GradientBuffer", "loss_reduction"]
