"""BatchNorm2D (scale, shift) + ReLU + 2x2 max-pool, forward and backward, one pass each over a batch range.

The arithmetic is nn/fused.py NormReLUPool's (x * scale + shift, np.maximum's NaN-propagating max,
the first maximum in row-major order wins, winner + 4 when the ReLU is off there), so float64
results equal it to rounding and winners exactly. A NaN in a window makes the window's output NaN
and its winner 3 (cell 3 then takes the gradient), as the reference does. Each kernel handles
samples lo..hi-1, so the backend's threads can share a batch out.
"""

from __future__ import annotations

from xnet.backends.cpu_kernels.flags import plain, sums


@plain
def _max(p, q):  # np.maximum: NaN when either is NaN; a select, not a branch
    return p if (p >= q or p != p) else q


@plain
def forward(x, scale, shift, affine, y, winner, lo, hi):
    """x (N, C, H, W), H and W even -> y (N, C, H/2, W/2) = max-pool(ReLU(x * scale + shift)), winner uint8 0..7."""
    C, Ho, Wo = x.shape[1], x.shape[2] // 2, x.shape[3] // 2
    for n in range(lo, hi):
        for ch in range(C):
            s, t = scale[ch], shift[ch]
            for i in range(Ho):
                r0, r1 = x[n, ch, 2 * i], x[n, ch, 2 * i + 1]  # rows sliced first: unit-stride loops
                yr, wr = y[n, ch, i], winner[n, ch, i]
                for j in range(Wo):
                    a, b, c, d = r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]
                    if affine:
                        a, b, c, d = a * s + t, b * s + t, c * s + t, d * s + t
                    m = _max(_max(a, b), _max(c, d))
                    # the first cell equal to m, as arithmetic on flags (no branches): 3 when none is (NaN)
                    na, nb, nc = int(a != m), int(b != m), int(c != m)
                    wr[j] = na * (nb * (nc + 1) + 1) + 4 * int(m <= 0)
                    yr[j] = m * (m > 0)  # as ReLU computes it (NaN stays NaN)


@sums
def grad_sums(g, x, winner, mean, dot, total, lo, hi):
    """Per channel, over samples lo..hi-1: dot = sum(dz * (x - mean)), total = sum(dz), dz the routed gradient."""
    C, Ho, Wo = x.shape[1], x.shape[2] // 2, x.shape[3] // 2
    for ch in range(C):
        mu = mean[ch]
        sd = 0.0
        st = 0.0
        for n in range(lo, hi):
            for i in range(Ho):
                r0, r1 = x[n, ch, 2 * i], x[n, ch, 2 * i + 1]
                gr, wr = g[n, ch, i], winner[n, ch, i]
                for j in range(Wo):
                    gv, w = gr[j], wr[j]
                    # dz at each cell is g * (winner == cell), as route_to_winners writes it
                    d0, d1, d2, d3 = gv * (w == 0), gv * (w == 1), gv * (w == 2), gv * (w == 3)
                    sd += d0 * (r0[2 * j] - mu) + d1 * (r0[2 * j + 1] - mu) + d2 * (r1[2 * j] - mu)
                    sd += d3 * (r1[2 * j + 1] - mu)
                    st += d0 + d1 + d2 + d3
        dot[ch] = sd
        total[ch] = st


@plain
def grad_input(g, x, winner, mean, s, k, c, mode, dx, lo, hi):
    """dx for samples lo..hi-1: mode 0 the routed gradient dz, 1 dz * s, 2 dz * s - (x - mean) * k - c."""
    C, Ho, Wo = x.shape[1], x.shape[2] // 2, x.shape[3] // 2
    for n in range(lo, hi):
        for ch in range(C):
            mu, sc, kc, cc = mean[ch], s[ch], k[ch], c[ch]
            for i in range(Ho):
                r0, r1 = x[n, ch, 2 * i], x[n, ch, 2 * i + 1]
                o0, o1 = dx[n, ch, 2 * i], dx[n, ch, 2 * i + 1]
                gr, wr = g[n, ch, i], winner[n, ch, i]
                for j in range(Wo):
                    gv, w = gr[j], wr[j]
                    d0, d1, d2, d3 = gv * (w == 0), gv * (w == 1), gv * (w == 2), gv * (w == 3)
                    if mode == 0:
                        o0[2 * j], o0[2 * j + 1], o1[2 * j], o1[2 * j + 1] = d0, d1, d2, d3
                    elif mode == 1:
                        o0[2 * j], o0[2 * j + 1], o1[2 * j], o1[2 * j + 1] = d0 * sc, d1 * sc, d2 * sc, d3 * sc
                    else:
                        o0[2 * j] = d0 * sc - (r0[2 * j] - mu) * kc - cc
                        o0[2 * j + 1] = d1 * sc - (r0[2 * j + 1] - mu) * kc - cc
                        o1[2 * j] = d2 * sc - (r1[2 * j] - mu) * kc - cc
                        o1[2 * j + 1] = d3 * sc - (r1[2 * j + 1] - mu) * kc - cc


@sums
def moments(x, mu, m2, lo, hi):
    """Per channel over samples lo..hi-1 of x (N, C, H, W): mu = mean, m2 = sum((x - mu)^2) (float64 each).

    Two reads of the range (its mean, then the squares about it) rather than E[x^2] - mean^2, which
    would cancel badly; a range of a few samples stays in cache between the two."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    P = H * W
    count = (hi - lo) * P
    for ch in range(C):
        s = 0.0
        for n in range(lo, hi):
            plane = x[n, ch].reshape(P)  # one long loop per plane: short rows vectorise poorly
            for p in range(P):
                s += plane[p]
        m = s / count
        q = 0.0
        for n in range(lo, hi):
            plane = x[n, ch].reshape(P)
            for p in range(P):
                d = plane[p] - m
                q += d * d
        mu[ch] = m
        m2[ch] = q
