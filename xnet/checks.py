"""Argument checks any public function can use: the message names the owner, the argument and the value."""

from __future__ import annotations

from numbers import Integral

import numpy as np


def check_bool(owner: str, name: str, value: object) -> bool:
    """True or False (NumPy's bool too): a string such as "no" would otherwise count as True."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be True or False, got {value!r}")
    return bool(value)


def check_int(owner: str, name: str, value: object, minimum: int | None = None) -> int:
    """An int (NumPy's too, not a bool or float), >= `minimum` when given."""
    want = "an int" if minimum is None else f"an int >= {minimum}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral):
        raise TypeError(f"{owner}: {name} must be {want}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: {name} must be {want}, got {value!r}")
    return int(value)
