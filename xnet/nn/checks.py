"""Checks shared by the layers: the gradient a backward pass is given."""

from __future__ import annotations

from typing import Any, NoReturn, TypeVar

T = TypeVar("T")

_HINT = "backward takes d(loss)/d(output), e.g. loss.backward(); not the loss value"


def check_grad(layer: Any, grad_out: Any, expected: tuple[int, ...] | None, cache: T = True) -> T:
    """Return `cache` (what forward kept) once grad_out is checked to have the last output's shape.

    Called first thing in every backward: one attribute read and a tuple comparison. It also
    stands in for Module._cached (`expected` or `cache` None: forward has not run), so a backward
    makes one call for both. Errors name the layer as its forward does (`layer._name`, else the
    class name).
    """
    try:  # free unless it raises; getattr(grad_out, "shape", None) cost more than all the rest
        if grad_out.shape == expected and cache is not None:
            return cache
    except AttributeError:  # not an array (None, a float, a list)
        pass
    _bad_grad(layer, grad_out, expected if cache is not None else None)


def _bad_grad(layer: Any, grad_out: Any, expected: tuple[int, ...] | None) -> NoReturn:
    """The error for a gradient check_grad refused: before forward, not an array, wrong shape."""
    if expected is None:
        raise RuntimeError(f"{type(layer).__name__}: backward called before forward")
    where = f"{getattr(layer, '_name', None) or type(layer).__name__}.backward"
    want = f"expected a gradient of shape {tuple(expected)} (the shape of its last output)"
    shape = getattr(grad_out, "shape", None)
    if not isinstance(shape, tuple):
        got = "None" if grad_out is None else f"a {type(grad_out).__name__}"
        raise TypeError(f"{where}: {want}, got {got}; {_HINT}")
    if not shape:
        raise ValueError(f"{where}: {want}, got a 0-d array; {_HINT}")
    raise ValueError(f"{where}: {want}, got {tuple(shape)}")


__all__ = ["check_grad"]
