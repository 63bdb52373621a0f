"""Row kernels, one pass each: ReLU's and dropout's masks and products, a dense layer's bias and
activation (in place) and the activation's gradient with its column sums, softmax cross-entropy on
integer labels, and a batch of uint8 pixel rows gathered and normalised.

Dropout takes the Philox words the reference draws (NumPy's own Philox makes them) and does the
threshold, the cast, the rescaling and the product in one loop. Cross-entropy does a row's
maximum, exponentials, sums, term and gradient in one walk over the row, with the reference's
roundings (q rounded to the dtype as `onehot * (1 - s) + s / K` rounds it); its sums are
reassociated, so float32 matches the reference within a few ulps, float64 to rounding. The pixel
gather does Normalization.apply's float32 steps (cast, subtract, divide) on each value: the same bits.
The bias, activation and gradient kernels do the reference's operations in its order: the same bits.
"""

from __future__ import annotations

import numpy as np

from xnet.backends.cpu_kernels.flags import plain, sums


@plain
def relu(x, one, y, mask):
    """Flat x -> mask = [x > 0] (one or 0 in x's dtype), y = x * mask: the reference's float mask, so
    y(NaN) = NaN and y(-inf) = NaN as there."""
    zero = one * 0
    for i in range(x.shape[0]):
        mv = one if x[i] > 0 else zero
        mask[i] = mv
        y[i] = x[i] * mv


@plain
def bias_relu(z, bias, has_bias, one, r0, r1):
    """Rows r0..r1-1 of z (N, K) in place: v = z + bias (where has_bias), then v * [v > 0] as
    ReLU's float mask gives it (NaN stays NaN, -inf becomes NaN, -0.0 stays -0.0)."""
    zero = one * 0
    for n in range(r0, r1):
        row = z[n]
        if has_bias:
            for k in range(row.shape[0]):
                v = row[k] + bias[k]
                row[k] = v * (one if v > 0 else zero)
        else:
            for k in range(row.shape[0]):
                v = row[k]
                row[k] = v * (one if v > 0 else zero)


@plain
def activation_grad(g, y, kind, one, gz, sums, r0, r1):
    """Rows r0..r1-1: gz = g * f'(y) from the activation's output y (N, K), the reference's
    operations in its order; sums (K,) = those rows of gz added up in row order.

    kind 0 ReLU: g * [y > 0] (y > 0 exactly where the input was); 1 Sigmoid: g * (y * (1 - y));
    2 Tanh: g * (1 - y * y)."""
    zero = one * 0
    for n in range(r0, r1):
        gr, yr, out = g[n], y[n], gz[n]
        if kind == 0:
            for k in range(out.shape[0]):
                out[k] = gr[k] * (one if yr[k] > 0 else zero)
        elif kind == 1:
            for k in range(out.shape[0]):
                out[k] = gr[k] * (yr[k] * (one - yr[k]))
        else:
            for k in range(out.shape[0]):
                out[k] = gr[k] * (one - yr[k] * yr[k])
        if n == r0:  # NumPy's sum over rows starts from the first row, not from 0 (-0.0 stays -0.0)
            for k in range(out.shape[0]):
                sums[k] = out[k]
        else:
            for k in range(out.shape[0]):
                sums[k] += out[k]


@plain
def dropout(x, words, threshold, scale, y, mask):
    """Flat x, words (uint64) -> mask = [words >> 11 < threshold] * scale, y = x * mask (scale of x's dtype)."""
    zero = scale * 0
    for i in range(x.shape[0]):
        keep = (words[i] >> np.uint64(11)) < threshold
        mv = scale if keep else zero
        mask[i] = mv
        y[i] = x[i] * mv


@sums
def ce_labels(z, labels, hi, lo, scale, terms, grad, r0, r1):
    """Rows r0..r1-1 of logits z (N, K) and labels (N,) -> terms (N,), grad (N, K) = (softmax - q) * scale;
    returns how many of the rows' labels are their argmax (np.argmax's: the first largest, or the first NaN).

    hi = 1 - s and lo = s / K, rounded to z's dtype; a row holding NaN gives NaN."""
    K = z.shape[1]
    hits = 0
    for n in range(r0, r1):
        row, g = z[n], grad[n]
        m = row[0]
        best = 0
        for k in range(1, K):
            v = row[k]
            best = k if (v > m or (v != v and m == m)) else best
            m = v if (v > m or v != v) else m
        se = row[0] * 0
        for k in range(K):
            e = np.exp(row[k] - m)
            g[k] = e  # kept for the gradient below: one exp per value, not two
            se += e
        dot = se * 0
        label = labels[n]
        for k in range(K):
            q = (hi if k == label else hi * 0) + lo
            dot += q * (row[k] - m)
            g[k] = (g[k] / se - q) * scale
        terms[n] = np.log(se) - dot
        hits += 1 if best == label else 0
    return hits


@plain
def take_scaled(raw, rows, offset, scale, subtract, divide, out):
    """out[r] = (float32(raw[rows[r]]) - offset) / scale for raw (N, P) uint8, rows (B,), out (B, P) float32;
    the subtraction only where `subtract`, the division only where `divide` (as Normalization.apply)."""
    for r in range(rows.shape[0]):
        src, dst = raw[rows[r]], out[r]
        for i in range(src.shape[0]):
            v = np.float32(src[i])
            if subtract:
                v = v - offset
            if divide:
                v = v / scale
            dst[i] = v
