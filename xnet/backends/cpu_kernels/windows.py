"""im2col and col2im for nn/conv.py's window layout, as compiled loops: one pass, no per-offset slicing.

The layout is nn/windows.py's: windows (G, kh, kw, C/G, N, Ho, Wo) of a padded (N, C, Hp, Wp)
input. Values are copied (im2col) or added in the reference's order, offset by offset (col2im), so
both give the reference's bits.
"""

from __future__ import annotations

from xnet.backends.cpu_kernels.flags import plain


@plain
def im2col(xpad, sh, sw, dh, dw, buf):
    """buf (G, kh, kw, Cg, N, Ho, Wo) of padded xpad (N, C, Hp, Wp):
    buf[g, i, j, c, n, y, x] = xpad[n, g*Cg + c, y*sh + i*dh, x*sw + j*dw]."""
    G, kh, kw, Cg, N, Ho, Wo = buf.shape
    for g in range(G):
        for i in range(kh):
            for j in range(kw):
                for c in range(Cg):
                    for n in range(N):
                        src = xpad[n, g * Cg + c]
                        dst = buf[g, i, j, c, n]
                        for y in range(Ho):
                            row, out = src[y * sh + i * dh], dst[y]
                            if sw == 1:  # sliced first: a unit-stride copy LLVM vectorises
                                seg = row[j * dw : j * dw + Wo]
                                for x in range(Wo):
                                    out[x] = seg[x]
                            else:
                                for x in range(Wo):
                                    out[x] = row[x * sw + j * dw]


@plain
def col2im(cols, sh, sw, dh, dw, out):
    """out (C, N, Hp, Wp) = 0, then every window of cols (G, kh, kw, Cg, N, Ho, Wo) added back, offset by offset."""
    G, kh, kw, Cg, N, Ho, Wo = cols.shape
    out[...] = 0
    for i in range(kh):
        for j in range(kw):
            for g in range(G):
                for c in range(Cg):
                    for n in range(N):
                        dst = out[g * Cg + c, n]
                        src = cols[g, i, j, c, n]
                        for y in range(Ho):
                            row, block = dst[y * sh + i * dh], src[y]
                            if sw == 1:
                                seg = row[j * dw : j * dw + Wo]
                                for x in range(Wo):
                                    seg[x] += block[x]
                            else:
                                for x in range(Wo):
                                    row[x * sw + j * dw] += block[x]
