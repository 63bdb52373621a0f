"""CUDA source of the CuPy backend's fast paths, kept apart from the Python that launches them.

PHILOX_SOURCE computes one word of a Philox-4x64-10 stream per thread, the same words as the
Array API reference in philox.py: one kernel launch per draw instead of the reference's
hundreds of small integer operations. It is plain CUDA C with no CuPy template types, so a
test compiles it with the host's C++ compiler (with a 128-bit stand-in for __umul64hi) and
compares it with NumPy's Philox where no GPU is present.
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

_kernels: dict[str, Any] = {}


def philox_kernel(cupy: Any) -> Any:
    """The ElementwiseKernel (compiled by CuPy on first call, then cached) that fills `out` with words."""
    if "philox" not in _kernels:
        _kernels["philox"] = cupy.ElementwiseKernel(preamble=PHILOX_SOURCE, **PHILOX_KERNEL)
    return _kernels["philox"]
