"""The backward of winograd.py's F(2x2, 3x3) convolution: its adjoint, tile by tile.

With Y = A^T (U * V) A per tile, summed over the input channels, a tile's output gradient dY
becomes D = A dY A^T (grad_tiles), and then
    dU[k] = sum over tiles of V[k]^T D[k]   (C, Co); the weight gradient is G^T dU G
    dV[k] = D[k] @ U[k]                     (T, C); each tile's B dV B^T is added into the padded
                                            input's gradient where the tiles overlap (input_grad)
for the 16 positions k: two sets of 16 products, each 2.25x smaller than the im2col product it
replaces, sharing D.

The tiles are channel-minor, as in winograd.py, and the transforms are built from its combine
runs; dU's products take V transposed (TN), which OpenBLAS runs as fast as the plain ones.

In exact arithmetic the gradients are the convolution's; in floats they round differently from
the im2col reference (tests compare them within tolerance), and the same inputs give the same bits
on every run.
"""

from __future__ import annotations

import numpy as np

from xnet.backends.cpu_kernels.flags import fma, sums
from xnet.backends.cpu_kernels.winograd import G, columns, combine, split_phases

# The transforms' rows as (count, index, sign, index, sign, ...), as winograd.py's BT and AT.
# A (output gradient, 4x2): row a of A dY
A = np.array([[1, 0, 1, 0, 0, 0, 0], [2, 0, 1, 1, 1, 0, 0], [2, 0, 1, 1, -1, 0, 0], [1, 1, -1, 0, 0, 0, 0]])
# B (the adjoint of B^T): row p of B dV
B = np.array([[1, 0, 1, 0, 0, 0, 0], [3, 1, 1, 2, -1, 3, 1], [3, 0, -1, 1, 1, 2, 1], [1, 3, -1, 0, 0, 0, 0]])


def weight_gradient(dU: np.ndarray) -> np.ndarray:
    """dU (16, C, Co) -> dw (Co, C, 3, 3) in dU's dtype: G^T dU G, the adjoint of weight_transform."""
    C, Co = dU.shape[1], dU.shape[2]
    g = G.astype(dU.dtype)
    # two small products instead of einsum's loops (0.7 ms for workload 4's layer)
    left = (g.T @ dU.reshape(4, 4 * C * Co)).reshape(3, 4, C * Co)  # (k, b, C*Co)
    dw = g.T @ left.transpose(1, 0, 2).reshape(4, 3 * C * Co)  # (l, k*C*Co)
    return np.ascontiguousarray(dw.reshape(3, 3, C, Co).transpose(3, 2, 1, 0))


@sums
def channel_sums(src, n0, n1, total):
    """total (C,) = src[n0:n1] (N, C, H, W) summed per channel."""
    for c in range(src.shape[1]):
        s = src.dtype.type(0)
        for n in range(n0, n1):
            plane = src[n, c].reshape(-1)  # one loop over the plane: a row of a few values vectorises poorly
            for f in range(plane.shape[0]):
                s += plane[f]
        total[c] = s


@fma
def grad_tiles(g, D, G4, n0, n1):
    """D (16, >= T * Co) = A dY A^T of every 2x2 tile dY of samples n0..n1-1 of g (N, Co, Ho, Wo),
    channel-minor, numbered as input_tiles numbers them; G4: scratch (4, >= T * Co)."""
    Co, per = g.shape[1], (g.shape[2] // 2) * (g.shape[3] // 2)
    for n in range(n0, n1):
        split_phases(g, n, G4, (n - n0) * per * Co)  # phase (p, q) is cell (p, q) of every tile
    terms = np.empty((4, 3), np.int64)
    for a in range(4):
        for b in range(4):
            m = 0
            for u in range(A[a, 0]):
                for v in range(A[b, 0]):
                    terms[m, 0] = 2 * A[a, 1 + 2 * u] + A[b, 1 + 2 * v]
                    terms[m, 1] = 0
                    terms[m, 2] = A[a, 2 + 2 * u] * A[b, 2 + 2 * v]
                    m += 1
            combine(D[4 * a + b], 0, G4, terms[:m], (n1 - n0) * per * Co, 1, 0, 0, False)


@fma
def input_grad(dV, R, X4, dx, th, tw, top, left, n0, n1):
    """dx[n0:n1] (N, C, H, W) from dV (16, >= T * C), the channel-minor tiles (th x tw a sample) of the
    padded input: each tile's B dV B^T added into the padded gradient where the tiles overlap, then
    cropped by `top` rows and `left` columns of padding. R: scratch like dV; X4: (4, >= (th + 1) * (tw + 1) * C)."""
    C, H, W = dx.shape[1], dx.shape[2], dx.shape[3]
    terms = np.empty((3, 3), np.int64)
    columns(R, dV, B, (n1 - n0) * th * tw * C)  # B on the columns: R[4a + q] from dV[4a + b]
    for n in range(n0, n1):
        X4[:, : (th + 1) * (tw + 1) * C] = 0
        at = (n - n0) * th * tw * C
        # B on the rows, added into cell (p, q) of each row of tiles: a run of phase (p % 2, q % 2)
        for p in range(4):
            for q in range(4):
                for u in range(B[p, 0]):
                    terms[u, 0], terms[u, 1], terms[u, 2] = 4 * B[p, 1 + 2 * u] + q, at, B[p, 2 + 2 * u]
                start = ((p // 2) * (tw + 1) + q // 2) * C
                combine(X4[2 * (p % 2) + q % 2], start, R, terms[: B[p, 0]], tw * C, th, (tw + 1) * C, tw * C, True)
        for y in range(H):  # cropped back to (C, H, W), the channels innermost as in split_phases
            yy = y + top
            for x in range(W):
                xx = x + left
                start = ((yy // 2) * (tw + 1) + xx // 2) * C
                cell = X4[2 * (yy % 2) + xx % 2, start : start + C]
                for c in range(C):
                    dx[n, c, y, x] = cell[c]
