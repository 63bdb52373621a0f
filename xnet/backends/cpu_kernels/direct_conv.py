"""A direct 2-D convolution (stride 1, no dilation, one group) for layers with few channels.

With few channels the window matrix of im2col is thin (9 rows for a 1-channel 3x3 layer) and the
BLAS product on it runs far below the core's speed, after a copy nine times the input's size.
Here each output plane is summed straight from the padded input: with the plane laid out on the
padded width (Wp), the tap (ki, kj) of every output is the input at flat offset ki * Wp + kj from
it, so each (channel, tap) is one long unit-stride multiply-add that LLVM vectorises. The columns
j >= Wo of that layout are never read (forward) or hold zeros (backward), so they add nothing.

Sums run in another order than the BLAS product of the reference (nn/conv.py), so results equal
it to rounding (float64) or within float32 tolerance. Each kernel handles samples lo..hi-1, so the
backend's threads can share a batch out.
"""

from __future__ import annotations

import numpy as np

from xnet.backends.cpu_kernels.flags import plain, sums


@plain
def forward(xpad, w, bias, y, lo, hi):
    """xpad (N, C, Hp, Wp), w (Co, C, kh, kw), bias (Co,) -> y (N, Co, Ho, Wo) for samples lo..hi-1."""
    C, Hp, Wp = xpad.shape[1], xpad.shape[2], xpad.shape[3]
    Co, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    Ho, Wo = y.shape[2], y.shape[3]
    span = (Ho - 1) * Wp + Wo  # flat positions from the first output to the last
    acc = np.empty(span, y.dtype)
    for n in range(lo, hi):
        for co in range(Co):
            b = bias[co]
            for p in range(span):
                acc[p] = b
            for ci in range(C):
                plane = xpad[n, ci].reshape(Hp * Wp)
                for ki in range(kh):
                    for kj in range(kw):
                        wv = w[co, ci, ki, kj]
                        seg = plane[ki * Wp + kj : ki * Wp + kj + span]
                        for p in range(span):
                            acc[p] += wv * seg[p]
            out = y[n, co]
            for i in range(Ho):
                row, src = out[i], acc[i * Wp : i * Wp + Wo]
                for j in range(Wo):
                    row[j] = src[j]


@sums
def backward(xpad, w, g, top, left, dw, db, dx, want_dx, lo, hi):
    """For samples lo..hi-1 of g (N, Co, Ho, Wo): dw (Co, C, kh, kw) and db (Co,) set to this range's
    sums; with want_dx, dx (N, C, H, W) = the input gradient, cropped from the padded one at (top, left)."""
    C, Hp, Wp = xpad.shape[1], xpad.shape[2], xpad.shape[3]
    Co, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    Ho, Wo = g.shape[2], g.shape[3]
    H, W = dx.shape[2], dx.shape[3]
    span = (Ho - 1) * Wp + Wo
    gflat = np.zeros((Co, Ho * Wp), g.dtype)  # g on the padded width; columns j >= Wo stay 0
    zero = gflat[0, 0]  # 0 in g's dtype
    dxpad = np.empty(Hp * Wp, g.dtype)
    dw[...] = 0
    db[...] = 0
    for n in range(lo, hi):
        for co in range(Co):
            s = zero
            for i in range(Ho):
                row, dst = g[n, co, i], gflat[co, i * Wp : i * Wp + Wo]
                for j in range(Wo):
                    dst[j] = row[j]
                    s += row[j]
            db[co] += s
        for ci in range(C):
            plane = xpad[n, ci].reshape(Hp * Wp)
            for co in range(Co):
                gco = gflat[co, :span]
                for ki in range(kh):
                    for kj in range(kw):
                        seg = plane[ki * Wp + kj : ki * Wp + kj + span]
                        t = zero
                        for p in range(span):
                            t += gco[p] * seg[p]
                        dw[co, ci, ki, kj] += t
            if want_dx:
                for p in range(Hp * Wp):
                    dxpad[p] = 0
                for co in range(Co):
                    gco = gflat[co, :span]
                    for ki in range(kh):
                        for kj in range(kw):
                            wv = w[co, ci, ki, kj]
                            seg = dxpad[ki * Wp + kj : ki * Wp + kj + span]
                            for p in range(span):
                                seg[p] += wv * gco[p]
                out = dx[n, ci]
                for i in range(H):
                    row, src = out[i], dxpad[(i + top) * Wp + left : (i + top) * Wp + left + W]
                    for j in range(W):
                        row[j] = src[j]
