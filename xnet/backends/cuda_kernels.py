"""CUDA source of the CuPy backend's fast paths, kept apart from the Python that launches them.

PHILOX_SOURCE computes one word of a Philox-4x64-10 stream per thread, the same words as the
Array API reference in philox.py: one kernel launch per draw instead of the reference's
hundreds of small integer operations. It is plain CUDA C with no CuPy template types, so a
test compiles it with the host's C++ compiler (with a 128-bit stand-in for __umul64hi) and
compares it with NumPy's Philox where no GPU is present.

OPTIMIZER_KERNELS update a parameter, its gradient and its optimizer state in one launch per array
(Adam/AdamW, SGD, RMSprop, Adagrad), doing the floating-point operations of the Array API
reference in xnet/optim/ in the same order, with every scalar of the array's type T (as NumPy 2
rounds a Python float multiplied into a float32 array). They were written from CuPy's
documentation and source (ElementwiseKernel passes an output array's element as a `T &`
reference, so `param -= ...` updates it in place) and compared with the reference on the host by
compiling the CUDA C with g++ (tests/backends/cuda_on_host.py); on a GPU nvcc may contract a
multiply and an add into one FMA, so results there may differ from the reference by a few ulps.
"""

from __future__ import annotations

from typing import Any

PHILOX_SOURCE = r"""
typedef unsigned long long xnet_u64;

// word `word` of the stream keyed (k0, k1) whose block b has the counter (b, epoch, 0, 0)
__device__ xnet_u64 xnet_philox_word(xnet_u64 k0, xnet_u64 k1, xnet_u64 epoch, xnet_u64 word) {
    xnet_u64 c0 = word >> 2, c1 = epoch, c2 = 0, c3 = 0;
    for (int r = 0; r < 10; ++r) {
        if (r) {
            k0 += 0x9E3779B97F4A7C15ULL;
            k1 += 0xBB67AE8584CAA73BULL;
        }
        xnet_u64 hi0 = __umul64hi(c0, 0xD2E7470EE14C6C93ULL), lo0 = c0 * 0xD2E7470EE14C6C93ULL;
        xnet_u64 hi1 = __umul64hi(c2, 0xCA5A826395121157ULL), lo1 = c2 * 0xCA5A826395121157ULL;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    switch (word & 3) {
        case 0: return c0;
        case 1: return c1;
        case 2: return c2;
        default: return c3;
    }
}
"""

PHILOX_KERNEL = {
    "in_params": "uint64 k0, uint64 k1, uint64 epoch, uint64 first",
    "out_params": "uint64 out",
    "operation": "out = xnet_philox_word(k0, k1, epoch, first + i);",
    "name": "xnet_philox_words",
}

# weight decay in an optimizer kernel's `decay` argument: none, coupled (added to the gradient,
# which keeps it, as the reference's `g += wd * w` does) or decoupled (AdamW's `w *= 1 - lr * wd`)
NO_DECAY, COUPLED_DECAY, DECOUPLED_DECAY = 0, 1, 2

# Each operation mirrors the reference body line by line; the comment names that body.
OPTIMIZER_KERNELS: dict[str, dict[str, str]] = {
    # xnet/optim/adam.py Adam._update_group (step_size and eps_hat fold in the bias corrections)
    "adam": {
        "in_params": "T b1, T one_minus_b1, T b2, T one_minus_b2, T eps_hat, T step_size, T wd, T shrink, int32 decay",
        "out_params": "T param, T grad, T m, T v",
        "operation": """
            if (decay == 1) grad += wd * param;
            else if (decay == 2) param *= shrink;
            m *= b1;
            m += one_minus_b1 * grad;
            T sq = grad * grad;
            sq *= one_minus_b2;
            v *= b2;
            v += sq;
            T d = sqrt(v);
            d += eps_hat;
            d = m / d;
            d *= step_size;
            param -= d;
        """,
        "name": "xnet_adam",
    },
    # xnet/optim/sgd.py SGD._update_group without momentum
    "sgd": {
        "in_params": "T lr, T wd, int32 decay",
        "out_params": "T param, T grad",
        "operation": """
            if (decay == 1) grad += wd * param;
            T d = lr * grad;
            param -= d;
        """,
        "name": "xnet_sgd",
    },
    # xnet/optim/sgd.py SGD._update_group with momentum (nesterov = 1: the look-ahead form)
    "sgd_momentum": {
        "in_params": "T lr, T mu, T wd, int32 decay, int32 nesterov",
        "out_params": "T param, T grad, T velocity",
        "operation": """
            if (decay == 1) grad += wd * param;
            T d = lr * grad;
            velocity *= mu;
            velocity -= d;
            if (nesterov) {
                param -= d;
                param += mu * velocity;
            } else {
                param += velocity;
            }
        """,
        "name": "xnet_sgd_momentum",
    },
    # xnet/optim/rmsprop.py RMSprop._update_group
    "rmsprop": {
        "in_params": "T lr, T rho, T one_minus_rho, T eps, T wd, int32 decay",
        "out_params": "T param, T grad, T mean_sq",
        "operation": """
            if (decay == 1) grad += wd * param;
            T sq = grad * grad;
            sq *= one_minus_rho;
            mean_sq *= rho;
            mean_sq += sq;
            T d = sqrt(mean_sq);
            d += eps;
            d = grad / d;
            d *= lr;
            param -= d;
        """,
        "name": "xnet_rmsprop",
    },
    # xnet/optim/adagrad.py Adagrad._update_group
    "adagrad": {
        "in_params": "T lr, T eps, T wd, int32 decay",
        "out_params": "T param, T grad, T sum_sq",
        "operation": """
            if (decay == 1) grad += wd * param;
            sum_sq += grad * grad;
            T d = sqrt(sum_sq);
            d += eps;
            d = grad / d;
            d *= lr;
            param -= d;
        """,
        "name": "xnet_adagrad",
    },
}

_kernels: dict[str, Any] = {}


def philox_kernel(cupy: Any) -> Any:
    """The ElementwiseKernel (compiled by CuPy on first call, then cached) that fills `out` with words."""
    if "philox" not in _kernels:
        _kernels["philox"] = cupy.ElementwiseKernel(preamble=PHILOX_SOURCE, **PHILOX_KERNEL)
    return _kernels["philox"]


def optimizer_kernel(cupy: Any, name: str) -> Any:
    """The ElementwiseKernel OPTIMIZER_KERNELS[name] (compiled by CuPy on first call per dtype, then cached)."""
    kernel = _kernels.get(name)
    if kernel is None:
        kernel = _kernels[name] = cupy.ElementwiseKernel(**OPTIMIZER_KERNELS[name])
    return kernel
