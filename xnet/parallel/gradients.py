"""Every parameter's gradient as a view into one flat buffer, so that one all-reduce averages them all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xnet.backends import Array, Backend
from xnet.nn.parameter import dtype_name, write_cleared_grads


class GradientBuffer:
    """One contiguous array (P + 2,) holding the P gradient values of an optimizer's parameters and two flags.

    The optimizer keeps its gradients there (`Optimizer.place_gradients`: a flat group moves its
    gradient buffer in, other parameters get views), so layers adding into `p.grad` fill this
    array in place and nothing is copied per step. The last two values carry this rank's requests,
    to stop (Ctrl-C, SIGTERM) and to write a checkpoint (its time has come on this rank's clock), in
    the same all-reduce as the gradients, so every rank learns of any rank's request at the same
    step. Gradients moved elsewhere (`load_state_dict` gives new arrays) are placed back, values
    kept, before the next all-reduce.
    """

    FLAGS = 2  # stop, checkpoint

    def __init__(self, optimizer: Any, backend: Backend):
        params = optimizer.parameters()
        dtypes = {dtype_name(p.data.dtype) for p in params}
        if len(dtypes) != 1:
            raise ValueError(f"GradientBuffer: parameters of one dtype expected, got {sorted(dtypes)}")
        self.optimizer, self.params, self.backend = optimizer, params, backend
        self.count = sum(p.size for p in params)
        self.flat = backend.zeros((self.count + self.FLAGS,), dtypes.pop())
        self.grads: list[Array] = optimizer.place_gradients(self.flat[: self.count])

    def rebind(self) -> None:
        """Put the gradients back into this buffer (values kept) where something gave them new arrays."""
        if any(p.grad is not g for p, g in zip(self.params, self.grads, strict=True)):
            self.grads = self.optimizer.place_gradients(self.flat[: self.count])

    def all_reduce(
        self, weight: float, stop: bool, reduce_sum: Callable[[Array], None], checkpoint: bool = False
    ) -> tuple[bool, bool]:
        """grads := sum over ranks of weight * grads, by one `reduce_sum(flat)`; (any rank asked to stop, any
        rank asked for a checkpoint)."""
        self.rebind()
        write_cleared_grads(self.params)  # the buffer is read as one array, not through p.grad
        grads = self.flat[: self.count]
        if weight != 1.0:
            grads *= weight
        self.flat[self.count] = 1.0 if stop else 0.0
        self.flat[self.count + 1] = 1.0 if checkpoint else 0.0
        reduce_sum(self.flat)
        flags = self.backend.to_numpy(self.flat[self.count :])  # one read for both
        return bool(flags[0] > 0), bool(flags[1] > 0)


def loss_reduction(loss: Any) -> str:
    """How `loss` reduces over a batch: "mean" (xnet's losses today) or "sum".

    With "mean", each rank's gradient is of its shard's mean, and the global batch's mean is the
    mean of the ranks' (their shards are equal): the gradients are averaged. With "sum" the
    global loss is the sum of the ranks' and so are the gradients.
    """
    reduction = getattr(loss, "reduction", "mean")
    return reduction if reduction in ("mean", "sum") else "mean"


__all__ = ["GradientBuffer", "loss_reduction"]
