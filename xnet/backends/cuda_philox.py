"""CUDA source of the Philox words: one kernel launch per draw instead of the reference's hundreds of operations.

PHILOX_SOURCE computes one word of a Philox-4x64-10 stream per thread, the same words as the Array
API reference in philox.py. It is plain CUDA C with no CuPy template types, so the tests compile it
with the host's C++ compiler (with a 128-bit stand-in for __umul64hi) and compare it with NumPy's
Philox; not yet run on a GPU. The CuPy backend's random_words launches it (PHILOX_KERNEL), and the
fused dropout kernel (cuda_nn_kernels.py) computes its mask's words with the same source.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xnet.backends import kernel_check, philox

PHILOX_SOURCE = r"""
// --fmad=false not passed: integer arithmetic only, there is no multiply-add of floats to contract
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


def words(cupy: Any, key: philox.Key, epoch: int, start: int, n: int) -> Any:
    """uint64 (n,) on the current device: words start..start+n-1 of the stream (key, epoch), in one launch."""
    out = cupy.empty((n,), dtype=np.uint64)
    if n:
        u64 = np.uint64  # the kernel's parameters are uint64: NumPy scalars of that type pass as they are
        kernel = kernel_check.elementwise(cupy, PHILOX_KERNEL, preamble=PHILOX_SOURCE)
        kernel(u64(key[0]), u64(key[1]), u64(epoch), u64(start), out)
    return out


def probe(cupy: Any) -> str | None:
    """None if the kernel's words equal NumPy's Philox on a small draw, else what went wrong."""
    key, epoch, start, n = (12345, 67890), 3, 6, 10
    got = cupy.asnumpy(words(cupy, key, epoch, start, n))
    return None if np.array_equal(got, philox.numpy_words(key, epoch, start, n)) else "drew other bits"
