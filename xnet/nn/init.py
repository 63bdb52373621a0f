"""Initialisers: named recipes that draw a parameter array from the backend's "init" random stream.

`init` may be a name ("kaiming_normal"), a name with keyword arguments written as a string
("normal(std=0.02)", "uniform(a=-0.1, b=0.1)", "constant(value=0.5)", "kaiming_uniform(gain=1)")
or a callable(backend, shape, fan_in, fan_out, dtype) -> array.
"""

from __future__ import annotations

import inspect
import math
import numbers
import re
from collections.abc import Callable

from xnet.backends import Array, Backend
from xnet.nn.parameter import dtype_name, is_floating

Shape = tuple[int, ...]
_SQRT2 = math.sqrt(2.0)


def fans(shape: Shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shape: Dense (in, out), conv (C_out, C_in/groups, kh, kw)."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _zeros(backend: Backend, shape: Shape, fan_in: int, fan_out: int, dtype: str) -> Array:
    return backend.zeros(shape, dtype)


def _ones(backend: Backend, shape: Shape, fan_in: int, fan_out: int, dtype: str) -> Array:
    return backend.ones(shape, dtype)


def _constant(backend, shape, fan_in, fan_out, dtype, value: float = 0.0) -> Array:
    return backend.full(shape, value, dtype)


def _normal(backend, shape, fan_in, fan_out, dtype, std: float = 0.01, mean: float = 0.0) -> Array:
    return backend.rng.stream("init").normal(shape, mean, std, dtype)


def _uniform(backend, shape, fan_in, fan_out, dtype, a: float = -0.05, b: float = 0.05) -> Array:
    return backend.rng.stream("init").uniform(shape, a, b, dtype)


def _xavier_normal(backend, shape, fan_in, fan_out, dtype, gain: float = 1.0) -> Array:
    return backend.rng.stream("init").normal(shape, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), dtype)


def _xavier_uniform(backend, shape, fan_in, fan_out, dtype, gain: float = 1.0) -> Array:
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return backend.rng.stream("init").uniform(shape, -bound, bound, dtype)


def _kaiming_normal(backend, shape, fan_in, fan_out, dtype, gain: float = _SQRT2) -> Array:
    return backend.rng.stream("init").normal(shape, 0.0, gain / math.sqrt(fan_in), dtype)


def _kaiming_uniform(backend, shape, fan_in, fan_out, dtype, gain: float = _SQRT2) -> Array:
    bound = gain * math.sqrt(3.0 / fan_in)
    return backend.rng.stream("init").uniform(shape, -bound, bound, dtype)


def _torch(backend, shape, fan_in, fan_out, dtype) -> Array:
    # PyTorch's default for Linear and Conv2d weights (kaiming_uniform with a=sqrt(5): bound
    # sqrt(6 / ((1 + 5) fan_in)) = 1/sqrt(fan_in)) and for their biases alike
    bound = 1.0 / math.sqrt(fan_in)
    return backend.rng.stream("init").uniform(shape, -bound, bound, dtype)


_RECIPES: dict[str, Callable[..., Array]] = {
    "zeros": _zeros,
    "ones": _ones,
    "constant": _constant,
    "normal": _normal,
    "uniform": _uniform,
    "xavier_normal": _xavier_normal,
    "xavier_uniform": _xavier_uniform,
    "kaiming_normal": _kaiming_normal,
    "kaiming_uniform": _kaiming_uniform,
    "torch": _torch,  # PyTorch's Linear/Conv2d default: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    "keras": _xavier_uniform,  # Keras's Dense/Conv2D default: glorot_uniform weights, zero biases
}
# glorot/he are the other common names for the same recipes
_ALIASES = {
    "glorot_normal": "xavier_normal",
    "glorot_uniform": "xavier_uniform",
    "he_normal": "kaiming_normal",
    "he_uniform": "kaiming_uniform",
}
INITIALIZERS: tuple[str, ...] = tuple(_RECIPES)

_SPEC = re.compile(r"\s*([A-Za-z_]+)\s*(?:\((.*)\))?\s*")
_KWARG = re.compile(r"\s*([A-Za-z_]+)\s*=\s*([^,]+?)\s*")


def parse_init(init: str) -> tuple[str, dict[str, float]]:
    """'normal(std=0.02)' -> ('normal', {'std': 0.02}); raises ValueError for unknown names/args."""
    m = _SPEC.fullmatch(init) if isinstance(init, str) else None
    if m is None:
        raise ValueError(
            f"initialiser {init!r} is not a name such as 'normal' or 'normal(std=0.02)'; "
            f"valid names: {', '.join(INITIALIZERS)}"
        )
    name = m.group(1).lower()
    name = _ALIASES.get(name, name)
    if name not in _RECIPES:
        valid = ", ".join(INITIALIZERS)
        raise ValueError(f"unknown initialiser {m.group(1)!r}; valid names: {valid}")
    params = list(inspect.signature(_RECIPES[name]).parameters)[5:]  # after the common five
    kwargs: dict[str, float] = {}
    body = (m.group(2) or "").strip()
    for part in body.split(",") if body else []:
        km = _KWARG.fullmatch(part)
        if km is None or km.group(1) not in params:
            expected = ", ".join(f"{p}=<number>" for p in params) or "no arguments"
            raise ValueError(
                f"initialiser {init!r}: bad argument {part.strip()!r}; expected {expected}"
            )
        try:
            kwargs[km.group(1)] = float(km.group(2))
        except ValueError:
            raise ValueError(
                f"initialiser {init!r}: {km.group(1)} must be a number, got {km.group(2)!r}"
            ) from None
    _check_args(init, name, kwargs)
    return name, kwargs


def _check_args(init: str, name: str, kwargs: dict[str, float]) -> None:
    """Finite arguments, a positive spread and a < b: caught when the spec is read, not after training."""
    for key, value in kwargs.items():
        if not math.isfinite(value):
            raise ValueError(f"initialiser {init!r}: {key} must be a finite number, got {value}")
    if kwargs.get("std", 1.0) <= 0:
        raise ValueError(f"initialiser {init!r}: std must be > 0, got {kwargs['std']:g}")
    if kwargs.get("gain", 1.0) <= 0:
        raise ValueError(f"initialiser {init!r}: gain must be > 0, got {kwargs['gain']:g}")
    if name == "uniform":
        defaults = inspect.signature(_uniform).parameters
        a, b = kwargs.get("a", defaults["a"].default), kwargs.get("b", defaults["b"].default)
        if not a < b:
            raise ValueError(f"initialiser {init!r}: uniform(a, b) needs a < b, got a={a:g}, b={b:g}")


def default_bias_init(init: str | Callable) -> str:
    """The bias initialiser that goes with weight initialiser `init`: its own for "torch", else zeros."""
    if isinstance(init, str) and parse_init(init)[0] == "torch":
        return "torch"
    return "zeros"


def initialize(
    init: str | Callable, backend: Backend, shape: Shape, fan_in: int, fan_out: int, dtype: str
) -> Array:
    """An array of `shape` in `dtype` drawn by `init` from the backend's seeded source."""
    if callable(init):
        _check_fans(getattr(init, "__name__", repr(init)), fan_in, fan_out)
        return _call_init(init, backend, tuple(shape), fan_in, fan_out, dtype)
    name, kwargs = parse_init(init)
    _check_fans(repr(init), fan_in, fan_out)
    return _RECIPES[name](backend, tuple(shape), fan_in, fan_out, dtype, **kwargs)


def _check_fans(what: str, fan_in: int, fan_out: int) -> None:
    """Positive ints: a NaN or fractional fan would give NaN or silently odd scales."""
    for fan in (fan_in, fan_out):
        if not isinstance(fan, numbers.Integral) or isinstance(fan, bool):
            raise TypeError(f"initialiser {what}: fans must be positive ints, got ({fan_in!r}, {fan_out!r})")
        if fan <= 0:
            raise ValueError(f"initialiser {what}: fans must be positive, got ({fan_in}, {fan_out})")


def _call_init(init: Callable, backend: Backend, shape: Shape, fan_in: int, fan_out: int, dtype: str) -> Array:
    """A user's initialiser, its result checked once (at construction) for shape and numbers."""
    what = getattr(init, "__name__", repr(init))
    result = init(backend, shape, fan_in, fan_out, dtype)
    if not hasattr(result, "shape") and not isinstance(result, (list, tuple, numbers.Real)):
        raise TypeError(f"initialiser {what} returned {type(result).__name__}; expected an array of shape {shape}")
    try:
        arr = backend.asarray(result)
    except (TypeError, ValueError) as e:
        raise TypeError(f"initialiser {what} returned no array of numbers ({e}); expected shape {shape}") from None
    if tuple(arr.shape) != shape:
        raise ValueError(f"initialiser {what} returned shape {tuple(arr.shape)}; expected {shape}")
    if not is_floating(arr, numeric=True):
        raise TypeError(f"initialiser {what} returned {dtype_name(arr.dtype)} values; expected real numbers")
    return backend.asarray(arr, dtype)


__all__ = ["INITIALIZERS", "default_bias_init", "fans", "initialize", "parse_init"]
