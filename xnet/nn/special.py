"""The Gaussian integral erf/erfc from array operations alone (the array API has no erf).

GELU's exact form needs the normal CDF Phi(x) = erfc(-x / sqrt 2) / 2 on every backend. For
|x| <= 2 erf is its Taylor series (36 terms, Horner in x^2, error < 1e-15); beyond, erfc is its
continued fraction (50 levels, relative error < 1e-13), so that Phi of a very negative x keeps
its relative precision instead of being 1 - erf's rounding noise.
"""

from __future__ import annotations

import math
from typing import Any

from xnet.backends import Array

_SWITCH = 2.0
_TAYLOR = [(-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(36)]
_LEVELS = 50


def erfc_abs(xp: Any, a: Array) -> tuple[Array, Array]:
    """(erf(a), erfc(a)) for a >= 0, same shape; erfc keeps its relative precision for large a."""
    t = xp.minimum(a, _SWITCH)
    z = t * t
    s = _TAYLOR[-1]
    for c in reversed(_TAYLOR[:-1]):
        s = s * z + c
    erf_small = (2.0 / math.sqrt(math.pi)) * t * s
    u = xp.maximum(a, _SWITCH)
    f = u
    for k in range(_LEVELS, 0, -1):  # erfc(u) = exp(-u^2) / sqrt(pi) / (u + (1/2)/(u + 1/(u + (3/2)/...)))
        f = u + (k / 2.0) / f
    erfc_large = xp.exp(-u * u) / (math.sqrt(math.pi) * f)
    small = a <= _SWITCH
    return xp.where(small, erf_small, 1.0 - erfc_large), xp.where(small, 1.0 - erf_small, erfc_large)


def normal_cdf(xp: Any, x: Array) -> Array:
    """Phi(x) = P(N(0, 1) <= x), elementwise, accurate in relative terms in both tails' approach."""
    erf, erfc = erfc_abs(xp, xp.abs(x) * (1.0 / math.sqrt(2.0)))
    # x >= 0: (1 + erf) / 2; x < 0: erfc(|x|/sqrt2) / 2, which stays precise where Phi is tiny
    return xp.where(x >= 0, 0.5 * (1.0 + erf), 0.5 * erfc)


def normal_pdf(xp: Any, x: Array) -> Array:
    """phi(x) = exp(-x^2 / 2) / sqrt(2 pi), elementwise."""
    return xp.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))


__all__ = ["erfc_abs", "normal_cdf", "normal_pdf"]
