"""CUDA source of the fused optimizer updates: one launch per parameter group instead of 2 to 26 operations.

Optimizers reach these kernels through the backend of their parameters (CupyBackend.adam_update
and its siblings; fast_paths.py documents the door).

OPTIMIZER_KERNELS update a parameter, its gradient and its optimizer state in one launch
(Adam/AdamW, SGD, RMSprop, Adagrad), doing the floating-point operations of the Array API reference
in xnet/optim/ in the same order, with every scalar of the array's type T (as NumPy 2 rounds a
Python float multiplied into a float32 array). They were written from CuPy's documentation and
source (ElementwiseKernel passes an output array's element as a `T &` reference, so `param -= ...`
updates it in place) and compared with the reference on the host by compiling the CUDA C with g++
(tests/backends/test_fast_paths.py), and compiled by NVRTC for sm_80 and sm_90 without a GPU
(tests/backends/test_nvrtc_compile.py); not yet run on a GPU.
"""

from __future__ import annotations

from typing import Any

from xnet.backends import kernel_check
from xnet.backends.fast_paths import COUPLED_DECAY, DECOUPLED_DECAY, NO_DECAY, scalar_args

__all__ = ["COUPLED_DECAY", "DECOUPLED_DECAY", "NO_DECAY", "OPTIMIZER_KERNELS", "kernel", "launch", "probe"]

# the reference rounds each product and sum; without this NVRTC contracts `m += one_minus_b1 * grad`
# and the like into fused multiply-adds (7 in float32 Adam), and the update differs in the last bits
OPTIONS = ("--fmad=false",)

# the smallest normal number of T: a decaying state below it in magnitude is set to +0 where the reference
# flushes it (xnet/optim/arrays.py flush_subnormal), by comparisons only, so NaN is kept
TINY = "const T tiny = (T)(sizeof(T) == 4 ? 1.1754943508222875e-38 : 2.2250738585072014e-308);"


def _flush(name: str) -> str:
    """The C statement that sets state `name` to +0 when |name| < tiny."""
    return f"if ({name} < tiny && {name} > -tiny) {name} = 0;"


# Each operation mirrors the reference body line by line; the comment names that body.
OPTIMIZER_KERNELS: dict[str, dict[str, str]] = {
    # xnet/optim/adam.py Adam._rule (step_size and eps_hat fold in the bias corrections)
    "adam": {
        "in_params": "T b1, T one_minus_b1, T b2, T one_minus_b2, T eps_hat, T step_size, T wd, T shrink, int32 decay",
        "out_params": "T param, T grad, T m, T v",
        "operation": f"""
            {TINY}
            if (decay == 1) grad += wd * param;
            else if (decay == 2) param *= shrink;
            m *= b1;
            m += one_minus_b1 * grad;
            {_flush("m")}
            T sq = grad * grad;
            sq *= one_minus_b2;
            v *= b2;
            v += sq;
            {_flush("v")}
            T d = sqrt(v);
            d += eps_hat;
            d = m / d;
            d *= step_size;
            param -= d;
        """,
        "name": "xnet_adam",
    },
    # xnet/optim/sgd.py SGD._rule without momentum
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
    # xnet/optim/sgd.py SGD._rule with momentum (nesterov = 1: the look-ahead form)
    "sgd_momentum": {
        "in_params": "T lr, T mu, T wd, int32 decay, int32 nesterov",
        "out_params": "T param, T grad, T velocity",
        "operation": f"""
            {TINY}
            if (decay == 1) grad += wd * param;
            T d = lr * grad;
            velocity *= mu;
            velocity -= d;
            {_flush("velocity")}
            if (nesterov) {{
                param -= d;
                param += mu * velocity;
            }} else {{
                param += velocity;
            }}
        """,
        "name": "xnet_sgd_momentum",
    },
    # xnet/optim/rmsprop.py RMSprop._rule
    "rmsprop": {
        "in_params": "T lr, T rho, T one_minus_rho, T eps, T wd, int32 decay",
        "out_params": "T param, T grad, T mean_sq",
        "operation": f"""
            {TINY}
            if (decay == 1) grad += wd * param;
            T sq = grad * grad;
            sq *= one_minus_rho;
            mean_sq *= rho;
            mean_sq += sq;
            {_flush("mean_sq")}
            T d = sqrt(mean_sq);
            d += eps;
            d = grad / d;
            d *= lr;
            param -= d;
        """,
        "name": "xnet_rmsprop",
    },
    # xnet/optim/adagrad.py Adagrad._rule
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


def kernel(cupy: Any, name: str) -> Any:
    """The ElementwiseKernel OPTIMIZER_KERNELS[name] (compiled by CuPy on first launch per dtype, then cached)."""
    return kernel_check.elementwise(cupy, OPTIMIZER_KERNELS[name], options=OPTIONS)


def launch(cupy: Any, name: str, arrays: tuple[Any, ...], scalars: dict[str, Any]) -> None:
    """One launch of kernel `name` on its out_params `arrays`, its in_params taken from `scalars` by name."""
    kernel(cupy, name)(*scalar_args(name, scalars), *arrays)


def probe(cupy: Any, name: str, dtype: Any) -> None:
    """Launch kernel `name` once on scratch arrays of `dtype`, compiling it: a compiler error raises here.

    This catches a kernel that does not compile; its numbers are held to the reference by the tests."""
    spec = OPTIMIZER_KERNELS[name]
    scalars = [0] * len(spec["in_params"].split(","))
    kernel(cupy, name)(*scalars, *(cupy.zeros((1,), dtype=dtype) for _ in spec["out_params"].split(",")))
