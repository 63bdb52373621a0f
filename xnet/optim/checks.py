"""Argument checks shared by optimizers, regularisers and schedules (messages name arg and value)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable
from numbers import Real
from typing import Any


def _real(owner: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    return float(value)


def check_nonneg(owner: str, name: str, value: object) -> float:
    """A finite number >= 0 (learning rates, weight decay, penalty strengths)."""
    v = _real(owner, name, value)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")
    return v


def check_positive(owner: str, name: str, value: object) -> float:
    """A finite number > 0 (eps, clipping thresholds, division factors)."""
    v = _real(owner, name, value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    return v


def check_unit(owner: str, name: str, value: object) -> float:
    """A number in [0, 1) (momentum, betas, rho)."""
    v = _real(owner, name, value)
    if not 0 <= v < 1:
        raise ValueError(f"{owner}: {name} must be in [0, 1), got {value!r}")
    return v


def check_count(owner: str, name: str, value: object) -> int:
    """A positive int (total steps, periods)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return value


def check_name(kind: str, name: object, valid: tuple[str, ...]) -> str:
    """A lower-cased registry name, or ValueError listing the valid ones."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in valid:
        raise ValueError(f"unknown {kind} {name!r}; valid names: {', '.join(valid)}")
    return key


def check_list_of(owner: str, name: str, items: Any, kind: type, things: str, example: str) -> list:
    """One `kind` or an iterable of them (a list, a generator) as a list; TypeError naming `owner` otherwise."""
    if isinstance(items, kind):
        return [items]
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        got = repr(items) if isinstance(items, (str, bytes)) else type(items).__name__
        raise TypeError(f"{owner}: {name} must be a list of {things} (e.g. {example}), got {got}")
    out = list(items)
    for item in out:
        if not isinstance(item, kind):
            raise TypeError(f"{owner}: {name} must be {things}, got {type(item).__name__}")
    return out


def check_options(owner: str, given: Iterable[str], cls: type, taken: tuple[str, ...], error: type[Exception]) -> None:
    """Raise `error` naming the keywords in `given` that cls's constructor lacks (those in `taken` are
    the factory's own) and listing the ones it accepts."""
    valid = [p for p in inspect.signature(cls).parameters if p not in taken]
    unknown = [k for k in given if k not in valid]
    if unknown:
        raise error(f"{owner}: unknown option(s) {unknown}; {cls.__name__} accepts: {', '.join(valid) or 'none'}")
