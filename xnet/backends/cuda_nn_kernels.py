"""Fused CUDA kernels for layers and losses: dropout and softmax cross-entropy in one launch each.

Each is a CuPy ElementwiseKernel whose CUDA C does what the Array API reference body does in
several operations (each one a kernel launch on CuPy):

  dropout   the reference draws the stream's words (one launch), shifts, compares, casts, scales
            the mask and multiplies (five more). DROPOUT_KERNEL computes each element's Philox
            word (PHILOX_SOURCE, the words `Stream.words` would give), the Bernoulli decision
            with `bernoulli_threshold`, the scaled mask and x * mask in one launch.
  softmax cross-entropy  the reference's one-hot, max, shift, exp, row sums, log, products and
            gradient are about a dozen launches; the row kernels below run one thread per row
            (N threads, K classes each) and write the row's term and gradient in one launch.

Layers and losses reach these kernels through the optional Backend methods fused_dropout and
fused_softmax_cross_entropy, because they hold their backend (optimizers, which do not, go through
fast_paths.py). The sources are plain CUDA C with no CuPy template types, so tests compile them
with the host's C++ compiler (tests/backends/cuda_on_host.py) and compare them with the reference;
not yet run on a GPU. Launchers take the `cupy` module; cupy_backend.py decides when they apply and
runs the probes below once before their first use (kernel_check.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xnet.backends import kernel_check
from xnet.backends.cuda_philox import PHILOX_SOURCE
from xnet.backends.rng import Stream, bernoulli_threshold

# the reference rounds each product and sum (NumPy and CuPy launch them apart); NVRTC would
# otherwise contract a * b + c into one fused multiply-add and differ in the last bit
OPTIONS = ("--fmad=false",)
# one thread walks a whole row: worth it while rows are short (MNIST's K = 10); longer rows go to
# the reference, whose reductions spread a row over many threads
MAX_ROW = 1024
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
LABELS = (np.dtype(np.int32), np.dtype(np.int64))

DROPOUT_KERNEL = {
    "in_params": "T x, uint64 k0, uint64 k1, uint64 epoch, uint64 first, uint64 threshold, float64 scale",
    "out_params": "T y, T mask",
    # x * m also when m is 0, as the reference multiplies: an inf or NaN in x stays NaN there
    "operation": "T m = (xnet_philox_word(k0, k1, epoch, first + i) >> 11) < threshold ? (T)scale : (T)0;"
    " mask = m; y = x * m;",
    "name": "xnet_dropout",
}

ROW_SOURCE = r"""
__device__ inline float xnet_exp(float x) { return expf(x); }
__device__ inline double xnet_exp(double x) { return exp(x); }
__device__ inline float xnet_log(float x) { return logf(x); }
__device__ inline double xnet_log(double x) { return log(x); }

// the row's maximum, NaN if any entry is NaN (as the reference's max)
template <typename T>
__device__ T xnet_row_max(const T* z, long long K) {
    T m = z[0];
    for (long long k = 1; k < K; ++k) {
        if (z[k] > m || z[k] != z[k]) m = z[k];
        if (m != m) break;
    }
    return m;
}

// sum_k exp(z_k - m): the softmax's denominator
template <typename T>
__device__ T xnet_row_sum_exp(const T* z, long long K, T m) {
    T s = 0;
    for (long long k = 0; k < K; ++k) s += xnet_exp((T)(z[k] - m));
    return s;
}

// one row of cross-entropy on integer labels: q_k = [k == label] (1 - s) + s / K, rounded as the
// reference rounds it; term = log sum_e - sum_k q_k (z_k - m), grad_k = (softmax_k - q_k) * scale
template <typename T>
__device__ T xnet_ce_labels_row(const T* z, T* g, long long K, long long label, double smoothing, double scale) {
    T m = xnet_row_max(z, K), se = xnet_row_sum_exp(z, K, m);
    T hi = (T)(1.0 - smoothing), lo = (T)(smoothing / (double)K), sc = (T)scale, dot = 0;
    for (long long k = 0; k < K; ++k) {
        T q = (T)((k == label ? hi : (T)0) + lo), e = xnet_exp((T)(z[k] - m));
        dot += q * (T)(z[k] - m);
        g[k] = (T)((T)(e / se) - q) * sc;
    }
    return (T)(xnet_log(se) - dot);
}

// one row on soft targets p (which need not sum to one): q_k = p_k (1 - s) + s / K when s > 0,
// term = -sum_k q_k (z_k - m - log sum_e), grad_k = (softmax_k sum_j q_j - q_k) * scale
template <typename T>
__device__ T xnet_ce_soft_row(const T* z, const T* p, T* g, long long K, double smoothing, double scale) {
    T m = xnet_row_max(z, K), se = xnet_row_sum_exp(z, K, m), lse = xnet_log(se);
    T hi = (T)(1.0 - smoothing), lo = (T)(smoothing / (double)K), sc = (T)scale, dot = 0, total = 0;
    for (long long k = 0; k < K; ++k) {
        T q = smoothing > 0 ? (T)((T)(p[k] * hi) + lo) : p[k];
        dot += q * (T)((T)(z[k] - m) - lse);
        total += q;
    }
    for (long long k = 0; k < K; ++k) {
        T q = smoothing > 0 ? (T)((T)(p[k] * hi) + lo) : p[k], e = xnet_exp((T)(z[k] - m));
        g[k] = (T)((T)((T)(e / se) * total) - q) * sc;
    }
    return (T)-dot;
}
"""

CE_LABELS_KERNEL = {
    "in_params": "raw T z, raw L label, int64 K, float64 smoothing, float64 scale",
    "out_params": "T term, raw T grad",
    "operation": "term = xnet_ce_labels_row(&z[i * K], &grad[i * K], K, (long long)label[i], smoothing, scale);",
    "name": "xnet_softmax_ce_labels",
}

CE_SOFT_KERNEL = {
    "in_params": "raw T z, raw T p, int64 K, float64 smoothing, float64 scale",
    "out_params": "T term, raw T grad",
    "operation": "term = xnet_ce_soft_row(&z[i * K], &p[i * K], &grad[i * K], K, smoothing, scale);",
    "name": "xnet_softmax_ce_soft",
}

def _kernel(cupy: Any, spec: dict[str, str], preamble: str) -> Any:
    """The ElementwiseKernel of `spec` (compiled by CuPy on first launch per dtype, then cached)."""
    return kernel_check.elementwise(cupy, spec, preamble, OPTIONS)


def fusable(cupy: Any, *arrays: Any) -> bool:
    """Whether every array is a C-contiguous float32/float64 CuPy array of one dtype (what the kernels take)."""
    first = arrays[0]
    return all(
        isinstance(a, cupy.ndarray) and a.flags.c_contiguous and a.dtype == first.dtype and a.dtype in FLOATS
        for a in arrays
    )


def dropout(cupy: Any, x: Any, stream: Stream, keep: float, scale: float) -> tuple[Any, Any]:
    """(x * mask, mask), x any shape: the mask is `stream.bernoulli(x.shape, keep, x.dtype) * scale` in one launch.

    Advances `stream` as that draw does; the caller checked `fusable(cupy, x)`."""
    first = stream.take(tuple(x.shape))
    y, mask = cupy.empty(x.shape, dtype=x.dtype), cupy.empty(x.shape, dtype=x.dtype)
    if x.size:
        u64 = np.uint64  # the kernel's uint64 parameters: NumPy scalars of that type pass as they are
        k0, k1 = stream.key
        threshold = u64(bernoulli_threshold(keep))
        _kernel(cupy, DROPOUT_KERNEL, PHILOX_SOURCE)(
            x, u64(k0), u64(k1), u64(stream.epoch), u64(first), threshold, np.float64(scale), y, mask
        )
    return y, mask


def softmax_cross_entropy(
    cupy: Any, z: Any, target: Any, smoothing: float, scale: float
) -> tuple[Any, Any] | None:
    """Logits (N, K) and labels (N,) or soft targets (N, K) -> (terms (N,), d sum(terms) / dz * scale (N, K)).

    None when the kernels do not take these arrays (the reference then runs)."""
    if z.ndim != 2 or not 0 < z.shape[1] <= MAX_ROW or z.shape[0] == 0 or not fusable(cupy, z):
        return None
    N, K = z.shape
    if target.shape == (N,) and target.dtype in LABELS:
        spec = CE_LABELS_KERNEL
        if not (isinstance(target, cupy.ndarray) and target.flags.c_contiguous):
            return None
    elif target.shape == (N, K) and fusable(cupy, z, target):
        spec = CE_SOFT_KERNEL
        target = target.reshape(N * K)
    else:
        return None
    # flat views: a raw 1-D array indexes without the per-axis arithmetic of a 2-D one
    terms, grad = cupy.empty((N,), dtype=z.dtype), cupy.empty((N * K,), dtype=z.dtype)
    kernel = _kernel(cupy, spec, ROW_SOURCE)
    kernel(z.reshape(N * K), target, np.int64(K), np.float64(smoothing), np.float64(scale), terms, grad)
    return terms, grad.reshape(N, K)


# -- first-use checks: a kernel that fails to compile or computes other numbers is not used ------------


def probe_dropout(cupy: Any, backend: Any) -> str | None:
    """None if the dropout kernel gives the reference's mask, output and stream position on a small draw, else why."""
    for dtype in FLOATS:
        x = cupy.asarray(np.linspace(-2.0, 2.0, 37).reshape(37, 1), dtype=dtype)
        fused, reference = Stream(backend, 1, "probe"), Stream(backend, 1, "probe")
        reference.position = fused.position = 8
        y, mask = dropout(cupy, x, fused, 0.7, 1.0 / 0.7)
        want = reference.bernoulli((37, 1), 0.7, dtype)
        want *= 1.0 / 0.7
        same = np.array_equal(cupy.asnumpy(mask), cupy.asnumpy(want))
        if not (same and np.array_equal(cupy.asnumpy(y), cupy.asnumpy(x * want))):
            return f"gave another mask or output ({dtype})"
        if fused.position != reference.position:
            return "moved the stream to another position"
    return None


def probe_softmax_cross_entropy(cupy: Any) -> str | None:
    """None if the row kernels agree with a float64 NumPy softmax cross-entropy on small inputs, else why not."""
    z = np.array([[1.0, -2.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0], [40.0, -40.0, 2.0, 1.0]])
    labels = np.array([3, 1, 0])
    soft = np.array([[0.1, 0.2, 0.3, 0.4], [1.0, 0.0, 0.0, 0.0], [0.5, 0.0, 0.25, 0.5]])
    s, K = 0.1, z.shape[1]
    log_p = z - z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    for target in (labels, soft):
        q = np.eye(K)[labels] if target.ndim == 1 else target
        q = q * (1 - s) + s / K
        want_terms = -(q * log_p).sum(axis=1)
        want_grad = (np.exp(log_p) * q.sum(axis=1, keepdims=True) - q) * 0.5
        for dtype in FLOATS:
            t = cupy.asarray(target, dtype=np.int64 if target.ndim == 1 else dtype)
            terms, grad = softmax_cross_entropy(cupy, cupy.asarray(z, dtype=dtype), t, s, 0.5)
            ok = np.allclose(cupy.asnumpy(terms), want_terms, rtol=1e-5, atol=1e-5) and np.allclose(
                cupy.asnumpy(grad), want_grad, rtol=1e-5, atol=1e-6
            )
            if not ok:
                return f"computed other numbers ({'labels' if target.ndim == 1 else 'soft targets'}, {dtype})"
    return None


__all__ = ["dropout", "fusable", "probe_dropout", "probe_softmax_cross_entropy", "softmax_cross_entropy"]
