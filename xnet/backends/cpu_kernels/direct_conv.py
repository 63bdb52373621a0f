"""A direct 2-D convolution (stride 1, no dilation, one group) for layers with few channels.

With few channels the window matrix of im2col is thin (9 rows for a 1-channel 3x3 layer) and the
BLAS product on it runs far below the core's speed, after a copy nine times the input's size.
Here each output plane is summed straight from the padded input: with the plane laid out on the
padded width (Wp), the tap (ki, kj) of every output is the input at flat offset ki * Wp + kj from
it, so each (channel, tap) is one long unit-stride multiply-add that LLVM vectorises. The columns
j >= Wo of that layout are never read (forward) or hold zeros (backward), so they add nothing.

Sums run in another order than the BLAS product of the reference (nn/conv.py), and each multiply-add
is fused into one rounding (fastmath "contract": half the vector operations), so results equal it to
rounding (float64) or within float32 tolerance; the same inputs give the same bits on every run.
One difference: an infinite input value meets the zero columns in the weight gradient's sums
(0 * inf), which then say NaN where the reference says inf. Each kernel handles samples lo..hi-1,
so the backend's threads can share a batch out.
"""

from __future__ import annotations

import numpy as np

from xnet.backends.cpu_kernels.flags import fma, fma_sums


@fma
def _taps3x3(plane, k, acc, Wp, span):
    """acc[p] += the nine taps k (3, 3) of the flat plane at p, added in (ki, kj) order: one load
    and one store of acc per nine multiply-adds, not per one."""
    k0, k1, k2, k3, k4, k5, k6, k7, k8 = k[0, 0], k[0, 1], k[0, 2], k[1, 0], k[1, 1], k[1, 2], k[2, 0], k[2, 1], k[2, 2]
    r0, r1, r2 = plane[0 : span + 2], plane[Wp : Wp + span + 2], plane[2 * Wp : 2 * Wp + span + 2]
    for p in range(span):
        acc[p] = (
            acc[p] + k0 * r0[p] + k1 * r0[p + 1] + k2 * r0[p + 2] + k3 * r1[p] + k4 * r1[p + 1] + k5 * r1[p + 2]
            + k6 * r2[p] + k7 * r2[p + 1] + k8 * r2[p + 2]
        )  # fmt: skip


@fma
def _nine(k, c):
    """The nine taps of k[c] (3, 3), row by row, as scalars."""
    return k[c, 0, 0], k[c, 0, 1], k[c, 0, 2], k[c, 1, 0], k[c, 1, 1], k[c, 1, 2], k[c, 2, 0], k[c, 2, 1], k[c, 2, 2]


@fma
def _taps3x3_by4(plane, k, acc, Wp, span):
    """_taps3x3 for four output channels at once: k (4, 3, 3), acc (4, span). Each loaded input feeds
    four channels' multiply-adds; each channel's sum runs in _taps3x3's order."""
    # the 36 weights as scalars: loads the compiler can keep in registers for the whole loop
    p0, p1, p2, p3, p4, p5, p6, p7, p8 = _nine(k, 0)
    q0, q1, q2, q3, q4, q5, q6, q7, q8 = _nine(k, 1)
    s0, s1, s2, s3, s4, s5, s6, s7, s8 = _nine(k, 2)
    t0, t1, t2, t3, t4, t5, t6, t7, t8 = _nine(k, 3)
    a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
    r0, r1, r2 = plane[0 : span + 2], plane[Wp : Wp + span + 2], plane[2 * Wp : 2 * Wp + span + 2]
    for p in range(span):
        x0, x1, x2, x3, x4, x5 = r0[p], r0[p + 1], r0[p + 2], r1[p], r1[p + 1], r1[p + 2]
        x6, x7, x8 = r2[p], r2[p + 1], r2[p + 2]
        a0[p] = a0[p] + p0 * x0 + p1 * x1 + p2 * x2 + p3 * x3 + p4 * x4 + p5 * x5 + p6 * x6 + p7 * x7 + p8 * x8
        a1[p] = a1[p] + q0 * x0 + q1 * x1 + q2 * x2 + q3 * x3 + q4 * x4 + q5 * x5 + q6 * x6 + q7 * x7 + q8 * x8
        a2[p] = a2[p] + s0 * x0 + s1 * x1 + s2 * x2 + s3 * x3 + s4 * x4 + s5 * x5 + s6 * x6 + s7 * x7 + s8 * x8
        a3[p] = a3[p] + t0 * x0 + t1 * x1 + t2 * x2 + t3 * x3 + t4 * x4 + t5 * x5 + t6 * x6 + t7 * x7 + t8 * x8


@fma
def forward(xpad, w, bias, y, lo, hi):
    """xpad (N, C, Hp, Wp), w (Co, C, kh, kw), bias (Co,) -> y (N, Co, Ho, Wo) for samples lo..hi-1.

    Each output sums its bias, then the taps (ci, ki, kj) in order. 3x3 layers take four output
    channels per pass over the input (the same sums, a quarter of the input loads)."""
    C, Hp, Wp = xpad.shape[1], xpad.shape[2], xpad.shape[3]
    Co, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    Ho, Wo = y.shape[2], y.shape[3]
    span = (Ho - 1) * Wp + Wo  # flat positions from the first output to the last
    acc = np.empty(span, y.dtype)
    acc4 = np.empty((4, span), y.dtype)
    blocked = Co - Co % 4 if kh == 3 and kw == 3 else 0  # channels taken four at a time
    for n in range(lo, hi):
        for c0 in range(0, blocked, 4):
            for c in range(4):
                b = bias[c0 + c]
                for p in range(span):
                    acc4[c, p] = b
            for ci in range(C):
                _taps3x3_by4(xpad[n, ci].reshape(Hp * Wp), w[c0 : c0 + 4, ci], acc4, Wp, span)
            for c in range(4):
                out = y[n, c0 + c]
                for i in range(Ho):
                    row, src = out[i], acc4[c, i * Wp : i * Wp + Wo]
                    for j in range(Wo):
                        row[j] = src[j]
        for co in range(blocked, Co):
            b = bias[co]
            for p in range(span):
                acc[p] = b
            for ci in range(C):
                plane = xpad[n, ci].reshape(Hp * Wp)
                if kh == 3 and kw == 3:  # the common case: nine taps per pass over acc, not one
                    _taps3x3(plane, w[co, ci], acc, Wp, span)
                    continue
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


@fma_sums
def backward(xpad, w, g, top, left, dw, db, dx, want_dx, lo, hi):
    """For samples lo..hi-1 of g (N, Co, Ho, Wo): dw (Co, C, kh, kw) and db (Co,) set to this range's
    sums; with want_dx, dx (N, C, H, W) = the input gradient, cropped from the padded one at (top, left).

    Four output channels at a time as in forward: four weight-gradient sums share each input load,
    and the input gradient gathers four channels' terms per store."""
    C, Hp, Wp = xpad.shape[1], xpad.shape[2], xpad.shape[3]
    Co, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    Ho, Wo = g.shape[2], g.shape[3]
    H, W = dx.shape[2], dx.shape[3]
    span = (Ho - 1) * Wp + Wo
    gflat = np.zeros((Co, Ho * Wp), g.dtype)  # g on the padded width; columns j >= Wo stay 0
    zero = gflat[0, 0]  # 0 in g's dtype
    dxpad = np.empty(Hp * Wp, g.dtype)
    full = Co - Co % 4  # channels in whole blocks of four
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
            for c0 in range(0, Co, 4):
                c1, c2, c3 = min(c0 + 1, Co - 1), min(c0 + 2, Co - 1), min(c0 + 3, Co - 1)
                g0, g1, g2, g3 = gflat[c0, :span], gflat[c1, :span], gflat[c2, :span], gflat[c3, :span]
                for ki in range(kh):
                    for kj in range(kw):
                        seg = plane[ki * Wp + kj : ki * Wp + kj + span]
                        t0, t1, t2, t3 = zero, zero, zero, zero
                        for p in range(span):
                            v = seg[p]
                            t0 += g0[p] * v
                            t1 += g1[p] * v
                            t2 += g2[p] * v
                            t3 += g3[p] * v
                        dw[c0, ci, ki, kj] += t0
                        if c0 + 1 < Co:  # a last block of fewer: its repeated channel adds nothing
                            dw[c1, ci, ki, kj] += t1
                        if c0 + 2 < Co:
                            dw[c2, ci, ki, kj] += t2
                        if c0 + 3 < Co:
                            dw[c3, ci, ki, kj] += t3
            if want_dx:
                for p in range(Hp * Wp):
                    dxpad[p] = 0
                for ki in range(kh):
                    for kj in range(kw):
                        seg = dxpad[ki * Wp + kj : ki * Wp + kj + span]
                        for c0 in range(0, full, 4):
                            w0, w1 = w[c0, ci, ki, kj], w[c0 + 1, ci, ki, kj]
                            w2, w3 = w[c0 + 2, ci, ki, kj], w[c0 + 3, ci, ki, kj]
                            g0, g1 = gflat[c0, :span], gflat[c0 + 1, :span]
                            g2, g3 = gflat[c0 + 2, :span], gflat[c0 + 3, :span]
                            for p in range(span):
                                seg[p] += w0 * g0[p] + w1 * g1[p] + w2 * g2[p] + w3 * g3[p]
                        for co in range(full, Co):
                            wv, gco = w[co, ci, ki, kj], gflat[co, :span]
                            for p in range(span):
                                seg[p] += wv * gco[p]
                out = dx[n, ci]
                for i in range(H):
                    row, src = out[i], dxpad[(i + top) * Wp + left : (i + top) * Wp + left + W]
                    for j in range(W):
                        row[j] = src[j]
