"""Gradient clipping, in place on `p.grad`: by global norm and by value.

The public functions check their arguments; the optimizer calls the unchecked `_clip_by_*`
forms every step with thresholds and parameters it checked once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from xnet.backends import Array
from xnet.nn.parameter import Parameter
from xnet.optim.arrays import namespace_of
from xnet.optim.checks import check_list_of, check_positive

NORM_EPS = 1e-6  # keeps the scale finite when every gradient is zero


def _param_list(owner: str, params: Any) -> list[Parameter]:
    """The Parameters of any iterable (a list, a generator); TypeError naming `owner` otherwise."""
    return check_list_of(owner, "params", params, Parameter, "Parameters (with .grad)", "model.parameters()")


def _grad_norm(params: Sequence[Parameter]) -> Array | float:
    if not params:
        return 0.0
    xp = namespace_of(params[0].grad)
    total = None
    for p in params:
        g = xp.reshape(p.grad, (-1,))  # a view: vecdot sums g*g without a temporary array
        sq = xp.vecdot(g, g)
        total = sq if total is None else total + sq
    return xp.sqrt(total)


def _clip_by_norm(params: Sequence[Parameter], max_norm: float) -> Array | float:
    norm = _grad_norm(params)
    if not params:
        return norm
    xp = namespace_of(params[0].grad)
    scale = xp.minimum(max_norm / (norm + NORM_EPS), 1.0)
    for p in params:
        p.grad *= scale
    return norm


def _clip_by_value(params: Sequence[Parameter], v: float) -> None:
    if not params:
        return
    xp = namespace_of(params[0].grad)
    for p in params:
        # minimum(maximum(.)), not xp.clip: array-api-compat's clip assigns through boolean masks,
        # which on CuPy read a count back to the host (a GPU sync per parameter per step)
        p.grad[...] = xp.minimum(xp.maximum(p.grad, -v), v)


def grad_norm(params: Iterable[Parameter]) -> Array | float:
    """Global L2 norm of all gradients, sqrt(sum_p ||p.grad||^2), as a 0-d device array.

    Returns 0.0 (a Python float) when `params` is empty.
    """
    return _grad_norm(_param_list("grad_norm", params))


def clip_grad_norm(params: Iterable[Parameter], max_norm: float) -> Array | float:
    """Scale all gradients by min(1, max_norm / (norm + 1e-6)) in place; returns the norm before.

    The norm is global over every parameter given (biases included), as in PyTorch's
    clip_grad_norm_ and Keras's global_clipnorm. The scale is computed on the device, so there
    is no host synchronisation; read the returned 0-d array only when you report it.
    """
    max_norm = check_positive("clip_grad_norm", "max_norm", max_norm)
    return _clip_by_norm(_param_list("clip_grad_norm", params), max_norm)


def clip_grad_value(params: Iterable[Parameter], clip_value: float) -> None:
    """Clip every gradient element into [-clip_value, clip_value], in place."""
    v = check_positive("clip_grad_value", "clip_value", clip_value)
    _clip_by_value(_param_list("clip_grad_value", params), v)
