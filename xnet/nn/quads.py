"""Non-overlapping 2x2 windows of NCHW images, viewed as (N, C, H/2, 2, W/2, 2): their maxima, which
cell won, and gradients routed back to the winners. MaxPool2D's 2x2 path and the fused
norm-ReLU-pool step (fused.py) share them."""

from __future__ import annotations

from typing import Any

import numpy as np

from xnet.backends import Array, Backend

_CELLS = ((0, 0), (0, 1), (1, 0), (1, 1))  # a 2x2 window's cells in row-major order


def max_of_quads(xp: Any, q: Array) -> tuple[Array, Array]:
    """(n, C, Ho, 2, Wo, 2) windows -> their maxima (n, C, Ho, Wo) and winning cells (uint8 0..3).

    The first maximum in row-major order wins, as in argmax; a window holding NaN: cell 3.
    """
    a, b, c, d = (q[:, :, :, i, :, j] for i, j in _CELLS)
    m = xp.maximum(xp.maximum(a, b), xp.maximum(c, d))
    # winner = 0 if a == m else 1 if b == m else 2 if c == m else 3, in uint8 arithmetic
    not_a, not_b, not_c = (xp.astype(v != m, xp.uint8) for v in (a, b, c))
    return m, not_a * (not_b * (not_c + 1) + 1)


# Where launches count (a GPU), a window's winner is found in whole-batch operations instead:
# each cell carries a code, 8 4 / 2 1 in row-major order, and the largest code among the cells
# equal to the maximum is the first maximum's. Two reductions and a compare replace the ten
# small operations of max_of_quads, and backward routes with two operations instead of sixteen.
CELL_CODES = np.array([[8, 4], [2, 1]], dtype=np.uint8)


def cell_codes(backend: Backend) -> Array:
    """CELL_CODES on the device, shaped (1, 1, 1, 2, 1, 2) against a batch's windows."""
    return backend.asarray(CELL_CODES.reshape(1, 1, 1, 2, 1, 2), "uint8")


def quad_codes(xp: Any, q: Array, codes: Array, relu: bool = False) -> tuple[Array, Array]:
    """(n, C, Ho, 2, Wo, 2) windows -> their maxima (n, C, Ho, Wo), rectified when `relu`, and the
    code of the first maximum's cell (uint8; 0 where the ReLU is off, so no cell gets a gradient).

    A window holding NaN has a NaN maximum and code 0.
    """
    m = xp.max(q, axis=(3, 5))
    n, C, Ho, Wo = m.shape
    code = xp.max(xp.where(q == xp.reshape(m, (n, C, Ho, 1, Wo, 1)), codes, 0), axis=(3, 5))
    if not relu:
        return m, code
    return xp.maximum(m, 0.0), xp.where(m > 0, code, 0)


def route_by_codes(xp: Any, g: Array, code: Array, codes: Array) -> Array:
    """g (n, C, Ho, Wo) -> (n, C, Ho, 2, Wo, 2): each window's gradient at the cell `code` names, 0 elsewhere."""
    six = (g.shape[0], g.shape[1], g.shape[2], 1, g.shape[3], 1)
    return xp.where(xp.reshape(code, six) == codes, xp.reshape(g, six), 0.0)


def route_to_winners(xp: Any, g: Array, winner: Array, out: Array, lo: int) -> None:
    """out[lo:lo+n] (N, C, Ho, 2, Wo, 2) = g (n, C, Ho, Wo) at each window's winning cell, 0 elsewhere."""
    hi = lo + g.shape[0]
    for k, (i, j) in enumerate(_CELLS):
        # g * mask, not where(mask, g, 0): NumPy's where is ~15x slower on random masks
        out[lo:hi, :, :, i, :, j] = g * xp.astype(winner == k, g.dtype)
