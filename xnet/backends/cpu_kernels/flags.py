"""The compile options every kernel shares, and those of the ones that sum.

error_model="numpy": a division by zero gives inf/NaN as NumPy does, with no Python exception
check in the loop (that check stopped vectorisation: Adam 0.98 -> 0.12 ms). fastmath only as
{"reassoc"}, and only where a kernel sums: reassociation lets LLVM vectorise the reduction and
keeps NaN and inf semantics, which the full fastmath set would not.
"""

from __future__ import annotations

import numba

PLAIN = {"nogil": True, "cache": True, "error_model": "numpy"}
SUMS = {**PLAIN, "fastmath": {"reassoc"}}
# a multiply and an add fused into one rounding: for kernels whose results already equal the
# reference only to rounding (the direct convolution's sums run in another order than BLAS's)
FMA = {**PLAIN, "fastmath": {"contract"}}
FMA_SUMS = {**PLAIN, "fastmath": {"reassoc", "contract"}}

plain = numba.njit(**PLAIN)
sums = numba.njit(**SUMS)
fma = numba.njit(**FMA)
fma_sums = numba.njit(**FMA_SUMS)
