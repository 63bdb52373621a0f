"""Synthetic sets: the sine regression y = A*sin(B*x) + C*cos(D*x)."""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from xnet.backends import host_stream
from xnet.checks import check_int

SINE_DEFAULTS = {
    "a": 24.0,
    "b": 3.2,
    "c": 42.0,
    "d": 2.3,
    "n_train": 1000,
    "n_test": 100,
    "noise": 0.0,
    "low": -2 * math.pi,
    "high": 2 * math.pi,
}


def sine_function(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    """A*sin(B*x) + C*cos(D*x), elementwise."""
    return a * np.sin(b * x) + c * np.cos(d * x)


def make_sine(
    n_train: int = 1000,
    n_test: int = 100,
    *,
    a: float = 24.0,
    b: float = 3.2,
    c: float = 42.0,
    d: float = 2.3,
    noise: float = 0.0,
    low: float = -2 * math.pi,
    high: float = 2 * math.pi,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeded sine regression set: x_train (N, 1), y_train (N, 1), x_test, y_test, float32.

    x ~ U(low, high); y = A*sin(B*x) + C*cos(D*x), plus N(0, noise^2) on both splits.
    """
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"sine: {name} must be an integer >= 0, got {n!r}")
    for name, v in (("a", a), ("b", b), ("c", c), ("d", d), ("noise", noise), ("low", low), ("high", high)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, Real):
            raise TypeError(f"sine: {name} must be a number, got {v!r}")
        if not math.isfinite(v):
            raise ValueError(f"sine: {name} must be finite, got {v!r}")
    check_int("sine", "seed", seed, minimum=0)
    if noise < 0:
        raise ValueError(f"sine: noise must be >= 0, got {noise}")
    if not high > low:
        raise ValueError(f"sine: need low < high, got low={low}, high={high}")
    rng = host_stream(seed, "sine")
    out = []
    for n in (n_train, n_test):
        x = rng.uniform((n, 1), low, high)
        y = sine_function(x, a, b, c, d)
        if noise > 0:
            y = y + rng.normal((n, 1), 0.0, noise)
        out += [x.astype(np.float32), y.astype(np.float32)]
    return out[0], out[1], out[2], out[3]
