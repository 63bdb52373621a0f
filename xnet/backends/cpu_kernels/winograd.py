"""Winograd F(2x2, 3x3): a 3x3, stride-1 convolution's forward in 16 matrix products 2.25x smaller.

Each 2x2 block of outputs (a tile) is computed from the 4x4 block of the padded input under it:
V = B^T d B per input channel, U = G g G^T per (output, input) channel pair, M[k] = U[k] @ V[k] for
the 16 positions k of the 4x4 transform domain (the BLAS products, inner dimension C), and the
tile Y = A^T M A. That is 16 * C multiply-adds per 4 outputs and channel pair where im2col does
36 * C: workload 4's 32->64 layer did its products in 4.1 ms on one core against 7.7 ms for the
im2col product. The transforms are additions and subtractions only (G's halves are exact), done
here per chunk of samples so that V and M stay in the core's cache.

Results equal the reference (nn/conv.py's im2col and BLAS) to rounding in float64 and within
float32 tolerance (a relative error of about 3e-7 of the output's scale in float32), and the same
inputs give the same bits on every run. As with the direct convolution, an infinite input meets
subtractions in the transform (inf - inf), so outputs near it may be NaN where the reference has
inf. Only the forward runs here; the gradients come from the im2col path.
"""

from __future__ import annotations

import numpy as np

from xnet.backends.cpu_kernels.flags import fma

# G of F(2x2, 3x3): U = G g G^T turns a 3x3 kernel into its 4x4 transform
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def weight_transform(w: np.ndarray) -> np.ndarray:
    """w (Co, C, 3, 3) -> U (16, Co, C) in w's dtype: U[4a + b] = (G w G^T)[a, b]."""
    g = G.astype(w.dtype)
    u = np.einsum("ak,oikl,bl->aboi", g, w, g)
    return np.ascontiguousarray(u.reshape(16, w.shape[0], w.shape[1]))


def tile_buffer(C: int, T: int, dtype: np.dtype) -> np.ndarray:
    """An empty V (16, C, T) whose 16 planes start 64 bytes apart modulo 4 KiB: planes a multiple of
    4 KiB apart (workload 8's layer, 2 samples a chunk) put input_tiles' 16 store streams in one
    cache set, and it ran 5x slower (18 ms instead of 3.2 ms a batch)."""
    flat = np.empty((16, C * T + 64 // np.dtype(dtype).itemsize), dtype)
    return flat[:, : C * T].reshape(16, C, T)


@fma
def input_tiles(xpad, V, n0, n1):
    """V (16, C, T) = B^T d B of every tile of samples n0..n1-1 of xpad (N, C, Hp, Wp); the tiles
    are numbered (sample - n0, row, column), (Hp - 2) / 2 x (Wp - 2) / 2 per sample."""
    C, Hp, Wp = xpad.shape[1], xpad.shape[2], xpad.shape[3]
    th, tw = (Hp - 2) // 2, (Wp - 2) // 2
    for n in range(n0, n1):
        for c in range(C):
            img = xpad[n, c]
            for i in range(th):
                a0, a1, a2, a3 = img[2 * i], img[2 * i + 1], img[2 * i + 2], img[2 * i + 3]
                t0 = ((n - n0) * th + i) * tw
                v = V[:, c, t0 : t0 + tw]
                for j in range(tw):
                    q = 2 * j
                    # B^T d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3 (each over the tile's 4 columns)
                    x0, x1, x2, x3 = a0[q], a0[q + 1], a0[q + 2], a0[q + 3]
                    y0, y1, y2, y3 = a1[q], a1[q + 1], a1[q + 2], a1[q + 3]
                    z0, z1, z2, z3 = a2[q], a2[q + 1], a2[q + 2], a2[q + 3]
                    w0, w1, w2, w3 = a3[q], a3[q + 1], a3[q + 2], a3[q + 3]
                    r00, r01, r02, r03 = x0 - z0, x1 - z1, x2 - z2, x3 - z3
                    r10, r11, r12, r13 = y0 + z0, y1 + z1, y2 + z2, y3 + z3
                    r20, r21, r22, r23 = z0 - y0, z1 - y1, z2 - y2, z3 - y3
                    r30, r31, r32, r33 = y0 - w0, y1 - w1, y2 - w2, y3 - w3
                    # ... then B on the right: the same combinations of the columns
                    v[0, j], v[1, j], v[2, j], v[3, j] = r00 - r02, r01 + r02, r02 - r01, r01 - r03
                    v[4, j], v[5, j], v[6, j], v[7, j] = r10 - r12, r11 + r12, r12 - r11, r11 - r13
                    v[8, j], v[9, j], v[10, j], v[11, j] = r20 - r22, r21 + r22, r22 - r21, r21 - r23
                    v[12, j], v[13, j], v[14, j], v[15, j] = r30 - r32, r31 + r32, r32 - r31, r31 - r33


@fma
def output_tiles(M, bias, y, n0, n1):
    """y[n0:n1] (N, Co, Ho, Wo) = A^T M A + bias per tile of M (16, Co, T), numbered as input_tiles."""
    Co, Ho, Wo = y.shape[1], y.shape[2], y.shape[3]
    th, tw = Ho // 2, Wo // 2
    for n in range(n0, n1):
        for co in range(Co):
            b = bias[co]
            for i in range(th):
                t0 = ((n - n0) * th + i) * tw
                m = M[:, co, t0 : t0 + tw]
                o0, o1 = y[n, co, 2 * i], y[n, co, 2 * i + 1]
                for j in range(tw):
                    # A^T M: rows m0 + m1 + m2 and m1 - m2 - m3; then A on the right
                    s0, s1 = m[0, j] + m[4, j] + m[8, j], m[1, j] + m[5, j] + m[9, j]
                    s2, s3 = m[2, j] + m[6, j] + m[10, j], m[3, j] + m[7, j] + m[11, j]
                    u0, u1 = m[4, j] - m[8, j] - m[12, j], m[5, j] - m[9, j] - m[13, j]
                    u2, u3 = m[6, j] - m[10, j] - m[14, j], m[7, j] - m[11, j] - m[15, j]
                    o0[2 * j] = s0 + s1 + s2 + b
                    o0[2 * j + 1] = s1 - s2 - s3 + b
                    o1[2 * j] = u0 + u1 + u2 + b
                    o1[2 * j + 1] = u1 - u2 - u3 + b
