"""The parsers of RunConfig's option values: the text of a flag or a TOML value -> the value a run uses.

Each raises ConfigError naming the option and what it expects.
"""

from __future__ import annotations

import math
from typing import Any

from xnet.errors import ConfigError


def parse_hidden(spec: str | list[int]) -> list[int]:
    """'256,128' -> [256, 128]; '' or 'none' -> [] (no hidden layer)."""
    if isinstance(spec, list):
        items = spec
    else:
        text = str(spec).strip()
        if text.lower() in ("", "none"):
            return []
        try:
            items = [int(s) for s in text.replace(" ", "").split(",")]
        except ValueError:
            raise ConfigError(f"hidden: expected sizes like 256,128, got {spec!r}") from None
    if any(not isinstance(h, int) or isinstance(h, bool) or h <= 0 for h in items):
        raise ConfigError(f"hidden: sizes must be positive integers, got {spec!r}")
    return list(items)


def parse_milestones(spec: str | list[float] | None) -> list[float] | None:
    """'2,4.5' or [2, 4.5] -> [2, 4.5]: epochs, positive and strictly increasing; None stays None."""
    if spec is None:
        return None
    items: list[Any] = spec if isinstance(spec, list) else str(spec).replace(" ", "").split(",")
    try:
        values = [_number(x) for x in items]
    except (TypeError, ValueError):
        raise ConfigError(f"milestones: expected epochs like 10,20, got {spec!r}") from None
    if not values or any(not (math.isfinite(v) and v > 0) for v in values) or values != sorted(set(values)):
        raise ConfigError(f"milestones: expected positive epochs in increasing order like 10,20, got {spec!r}")
    return values


def _number(x: Any) -> int | float:
    """An int or float from TOML or a flag's text ('10' -> 10, '2.5' -> 2.5); bools and other types refused."""
    if isinstance(x, bool) or not isinstance(x, (int, float, str)):
        raise TypeError(x)
    if isinstance(x, str):
        return int(x) if x.lstrip("-").isdigit() else float(x)
    return x


def check_callback_spec(spec: object) -> str:
    """'package.module:name', or ConfigError saying what is expected."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise ConfigError(f"callbacks: expected 'package.module:name' (e.g. mycallbacks:LogEpochs), got {spec!r}")
    return spec


def parse_callbacks(spec: str | list[str]) -> list[str]:
    """One 'module:name' or a list of them -> the list, each checked (imported only when a run starts)."""
    return [check_callback_spec(s) for s in ([spec] if isinstance(spec, str) else spec)]


def parse_batch_size(spec: str | int) -> int | str:
    """A positive int, or 'full' for batch gradient descent over the whole training set."""
    if isinstance(spec, str):
        if spec.strip().lower() == "full":
            return "full"
        try:
            spec = int(spec)
        except ValueError:
            raise ConfigError(f"batch_size: expected a positive integer or 'full', got {spec!r}") from None
    if isinstance(spec, bool) or not isinstance(spec, int) or spec <= 0:
        raise ConfigError(f"batch_size: expected a positive integer or 'full', got {spec!r}")
    return spec
