"""Winograd F(2x2, 3x3): a 3x3, stride-1 convolution's forward in 16 matrix products 2.25x smaller.

Each 2x2 block of outputs (a tile) is computed from the 4x4 block of the padded input under it:
V = B^T d B per input channel, U = G g G^T per (output, input) channel pair, M[k] = V[k] @ U[k]^T
for the 16 positions k of the 4x4 transform domain (the BLAS products, inner dimension C), and the
tile Y = A^T M A. That is 16 * C multiply-adds per 4 outputs and channel pair where im2col does
36 * C. The transforms are additions and subtractions only (G's halves are exact), done per chunk
of samples so that V and M stay in the core's cache. winograd_grad.py has the backward.

Layout, and why. The tiles are channel-minor, (16, T, C) with T the tiles of a chunk: OpenBLAS
runs these products up to twice as fast as with the channels first (workload 4's layer, 245
tiles: 0.079 ms for V @ U^T, 0.15 for U @ V^T). Each sample is first split by row and column
parity into four channel-minor planes (split_phases): then cell (p, q) of every tile in a row of
tiles, over all channels, is one contiguous run, and each transform output is a loop over such
runs that loads a few and stores one (combine). One store per loop matters: LLVM vectorises a loop
only where it can check at run time that its stores and loads do not overlap, and gives up past a
few such checks; one loop storing all 16 outputs ran scalar, 2.3x slower than 16 loops.

Results equal the reference (nn/conv.py's im2col and BLAS) to rounding in float64 and within
float32 tolerance (a relative error of about 3e-7 of the output's scale in float32), and the same
inputs give the same bits on every run. As with the direct convolution, an infinite input meets
subtractions in the transform (inf - inf), so outputs near it may be NaN where the reference has
inf.
"""

from __future__ import annotations

import numpy as np

from xnet.backends.cpu_kernels import scratch
from xnet.backends.cpu_kernels.flags import fma

# G of F(2x2, 3x3): U = G g G^T turns a 3x3 kernel into its 4x4 transform
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
# B^T and A^T as rows of (count, index, sign, index, sign): row a of B^T d is the sum of sign * d[index]
BT = np.array([[2, 0, 1, 2, -1], [2, 1, 1, 2, 1], [2, 2, 1, 1, -1], [2, 1, 1, 3, -1]])
AT = np.array([[3, 0, 1, 1, 1, 2, 1], [3, 1, 1, 2, -1, 3, -1]])


def weight_transform(w: np.ndarray) -> np.ndarray:
    """w (Co, C, 3, 3) -> U (16, Co, C) in w's dtype: U[4a + b] = (G w G^T)[a, b]."""
    g = G.astype(w.dtype)
    u = np.einsum("ak,oikl,bl->aboi", g, w, g)
    return np.ascontiguousarray(u.reshape(16, w.shape[0], w.shape[1]))


def tile_planes(size: int, dtype: np.dtype, name: str | None = None) -> np.ndarray:
    """An empty C-contiguous (16, size + 64 bytes): 16 planes of `size` values that start 64 bytes
    apart modulo 4 KiB. Planes a multiple of 4 KiB apart put a transform's streams, one per plane, in
    one cache set: an earlier input transform, storing to all 16 planes at once, ran 5x slower so on
    workload 8's layer (18 ms instead of 3.2 ms a batch). With a `name`, the thread's reused array
    of that name (scratch.py)."""
    shape = (16, size + 64 // np.dtype(dtype).itemsize)
    return np.empty(shape, dtype) if name is None else scratch.array(name, shape, dtype)


def planes_as(planes: np.ndarray, a: int, b: int) -> np.ndarray:
    """The first a * b values of each of tile_planes' 16 planes as (16, a, b)."""
    return planes[:, : a * b].reshape(16, a, b)


@fma
def combine(out, at, src, terms, length, rows, out_step, src_step, add):
    """For r < rows: out[at + r * out_step :][:length] = (or += where add) the sum of
    sign * src[row, start + r * src_step :][:length] over the 1 to 4 (row, start, sign) rows of terms.

    One store stream a loop, so that LLVM vectorises it. Every run is sliced first, so that each
    index counts from 0: Numba wraps a negative index, and an index that might be one (start + f)
    made every load a gather, 10x slower."""
    count, last = terms.shape[0], terms.shape[0] - 1
    r0, r1, r2, r3 = terms[0, 0], terms[min(1, last), 0], terms[min(2, last), 0], terms[last, 0]
    s0, s1, s2, s3 = terms[0, 1], terms[min(1, last), 1], terms[min(2, last), 1], terms[last, 1]
    w0, w1 = out.dtype.type(terms[0, 2]), out.dtype.type(terms[min(1, last), 2])
    w2, w3 = out.dtype.type(terms[min(2, last), 2]), out.dtype.type(terms[last, 2])
    for r in range(rows):
        o, shift = out[at + r * out_step : at + r * out_step + length], r * src_step
        x0 = src[r0, s0 + shift : s0 + shift + length]
        x1 = src[r1, s1 + shift : s1 + shift + length]
        x2 = src[r2, s2 + shift : s2 + shift + length]
        x3 = src[r3, s3 + shift : s3 + shift + length]
        if count == 1:
            if add:
                for f in range(length):
                    o[f] += w0 * x0[f]
            else:
                for f in range(length):
                    o[f] = w0 * x0[f]
        elif count == 2:
            if add:
                for f in range(length):
                    o[f] += w0 * x0[f] + w1 * x1[f]
            else:
                for f in range(length):
                    o[f] = w0 * x0[f] + w1 * x1[f]
        elif count == 3:
            if add:
                for f in range(length):
                    o[f] += w0 * x0[f] + w1 * x1[f] + w2 * x2[f]
            else:
                for f in range(length):
                    o[f] = w0 * x0[f] + w1 * x1[f] + w2 * x2[f]
        else:
            for f in range(length):  # only the input tiles have four terms, and they never add
                o[f] = (w0 * x0[f] + w1 * x1[f]) + (w2 * x2[f] + w3 * x3[f])


@fma
def columns(out, src, rows, size):
    """out[len(rows) * a + s] = the sum of sign * src[4a + index] over the terms of rows[s] (rows as
    BT and AT: count, index, sign, ...), for a < 4: a transform on the columns of every tile at once,
    over the first `size` values of each plane."""
    terms = np.empty((3, 3), np.int64)
    width = rows.shape[0]
    for a in range(4):
        for s in range(width):
            for v in range(rows[s, 0]):
                terms[v, 0], terms[v, 1], terms[v, 2] = 4 * a + rows[s, 1 + 2 * v], 0, rows[s, 2 + 2 * v]
            combine(out[width * a + s], 0, src, terms[: rows[s, 0]], size, 1, 0, 0, False)


@fma
def split_phases(src, n, out, at):
    """out[:, at:] (4, ...) = src[n] (N, C, H, W), H and W even, split by row and column parity and
    channel-minor: out[2 * (y % 2) + x % 2, at + ((y // 2) * (W // 2) + x // 2) * C + c] = src[n, c, y, x].
    The channels innermost: contiguous stores from strided loads ran 3x faster than the other way."""
    C, H, W = src.shape[1], src.shape[2], src.shape[3]
    for y in range(H):
        even, odd = out[2 * (y % 2)], out[2 * (y % 2) + 1]
        for v in range(W // 2):
            start = at + ((y // 2) * (W // 2) + v) * C
            e, o = even[start : start + C], odd[start : start + C]
            for c in range(C):
                e[c] = src[n, c, y, 2 * v]
                o[c] = src[n, c, y, 2 * v + 1]


@fma
def input_tiles(xpad, V, X4, n0, n1):
    """V (16, >= T * C) = B^T d B of every 4x4 tile d of samples n0..n1-1 of xpad (N, C, Hp, Wp),
    channel-minor, tiles numbered (sample - n0, row, column); X4: scratch (4, >= Hp * Wp * C / 4)."""
    C, Hp, Wp = xpad.shape[1], xpad.shape[2], xpad.shape[3]
    th, tw = (Hp - 2) // 2, (Wp - 2) // 2
    terms = np.empty((4, 3), np.int64)
    for n in range(n0, n1):
        split_phases(xpad, n, X4, 0)
        for a in range(4):
            for b in range(4):
                m = 0
                for u in range(BT[a, 0]):
                    p, sp = BT[a, 1 + 2 * u], BT[a, 2 + 2 * u]
                    for v in range(BT[b, 0]):
                        q, sq = BT[b, 1 + 2 * v], BT[b, 2 + 2 * v]
                        # cell (p, q) of a row of tiles, all channels: one run of phase (p % 2, q % 2)
                        terms[m, 0] = 2 * (p % 2) + q % 2
                        terms[m, 1] = ((p // 2) * (tw + 1) + q // 2) * C
                        terms[m, 2] = sp * sq
                        m += 1
                at = (n - n0) * th * tw * C
                combine(V[4 * a + b], at, X4, terms[:m], tw * C, th, tw * C, (tw + 1) * C, False)


@fma
def output_tiles(M, R, row, bias, y, n0, n1):
    """y[n0:n1] (N, Co, Ho, Wo) = A^T M A + bias of every tile of M (16, >= T * Co), channel-minor
    tiles numbered as input_tiles numbers them. R: scratch (8, >= T * Co); row: (2, >= Wo * Co / 2)."""
    Co, Ho, Wo = y.shape[1], y.shape[2], y.shape[3]
    th, tw = Ho // 2, Wo // 2
    terms = np.empty((3, 3), np.int64)
    columns(R, M, AT, (n1 - n0) * th * tw * Co)  # A^T on the columns: R[2a + s] from M[4a + b]
    # ... then on the rows, a row of outputs at a time: its even and odd columns, channel-minor,
    # then written across into (Co, Ho, Wo) with the bias (contiguous stores: 1.6x faster than
    # writing each output's channels, a plane apart, as the sums come)
    for n in range(n0, n1):
        for yy in range(Ho):
            r, start = yy % 2, ((n - n0) * th + yy // 2) * tw * Co
            for u in range(AT[r, 0]):
                terms[u, 0], terms[u, 1], terms[u, 2] = 2 * AT[r, 1 + 2 * u], start, AT[r, 2 + 2 * u]
            combine(row[0], 0, R, terms[: AT[r, 0]], tw * Co, 1, 0, 0, False)
            terms[: AT[r, 0], 0] += 1
            combine(row[1], 0, R, terms[: AT[r, 0]], tw * Co, 1, 0, 0, False)
            for c in range(Co):
                out, b, even, odd = y[n, c, yy], bias[c], row[0, c:], row[1, c:]
                for v in range(tw):
                    out[2 * v] = even[v * Co] + b
                    out[2 * v + 1] = odd[v * Co] + b
