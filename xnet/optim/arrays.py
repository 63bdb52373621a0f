"""Where optimizer state lives: the namespace of parameter arrays, host <-> device copies, how an
update runs over the CPU cores, and the one numerical rule every optimizer state follows.

The rule (flush_subnormal): each state value that decays (Adam's m and v, SGD's velocity, RMSprop's
mean square, ...) is set to +0 as soon as it is computed, before the update uses it, when its magnitude
is below the smallest normal number of its dtype (float32 1.1754944e-38, float64 2.2250738585072014e-308);
NaN and inf are kept. A state whose gradient stays 0 decays geometrically into the subnormal range
after ~800 steps (0.9^830 ~ 1e-38), and on x86 every operation that reads or writes a subnormal takes
a microcode assist: a dead ReLU layer made the compiled Adam step 18x slower. The Array API bodies, the
compiled CPU kernels and the CUDA kernels apply it at the same point, so every device keeps the same
bits. Its effect on a step is below ~1e-30 relative; PyTorch keeps subnormals, so xnet and PyTorch
may differ there by that much.

An optimizer sees only Parameters, not the backend, so it finds the array library from the
arrays themselves: NumPy arrays use `numpy` directly (no wrapper, which would cost time every
step), anything else the namespace array-api-compat reports (CuPy, array-api-strict).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from xnet.backends import Array, cpu_threads

# Updates of NumPy parameters with at least this many values run in row blocks, one per CPU
# thread: a (784, 256) Adam update took 162 instead of 203 us on 2 cores. At 100k values the
# hand-off to a sleeping thread (~45 us) cost more than the split saved (110 against 96 us).
SPLIT_MIN_VALUES = 150_000


def namespace_of(a: Array) -> ModuleType:
    """The Array API namespace of `a`: numpy itself for NumPy arrays."""
    if isinstance(a, np.ndarray):
        return np
    return array_api_compat.array_namespace(a)


def to_host(a: Array) -> np.ndarray:
    """A host NumPy copy of a device array (one transfer; a sync on GPUs)."""
    if isinstance(a, (np.ndarray, np.generic)):
        return np.array(a, copy=True)
    if array_api_compat.is_cupy_array(a):
        return array_api_compat.to_device(a, "cpu")  # CuPy's .get(): a fresh host array
    return np.array(np.from_dlpack(a), copy=True)


def to_device_like(host: np.ndarray, ref: Array) -> Array:
    """A copy of host array `host` on the device of `ref`, with the dtype of `ref`."""
    xp = namespace_of(ref)
    if xp is np:
        return np.array(host, dtype=ref.dtype, copy=True)
    return xp.asarray(np.asarray(host), dtype=ref.dtype, device=array_api_compat.device(ref), copy=True)


def flush_subnormal(s: Array, xp: ModuleType) -> None:
    """In place: values of state `s` (any shape) with |s| below its dtype's smallest normal become +0.

    NaN fails the comparison and is kept. Two forms with the same result: on NumPy a boolean-mask
    assignment, which writes only the few flushed values (Adam's reference step on (784, 256) float32:
    0.49 ms with it, 0.61 ms with the select, 0.38 ms with no flush); elsewhere a select written back,
    as on CuPy a mask assignment counts the mask on the host (a sync every step)."""
    small = xp.abs(s) < xp.finfo(s.dtype).smallest_normal
    if xp is np:
        s[small] = 0
    else:
        s[...] = xp.where(small, 0.0, s)


def each_part(update: Callable[..., None], arrays: tuple[Array, ...], *args: Any) -> None:
    """update(*arrays, *args): an elementwise in-place update of same-shaped arrays (weight,
    gradient, state). Large NumPy arrays go in row blocks over the CPU threads; each value's
    result is the same either way, as no element depends on another."""
    a = arrays[0]
    if a.size < SPLIT_MIN_VALUES or not isinstance(a, np.ndarray) or a.ndim == 0:
        update(*arrays, *args)
        return
    rows = a.shape[0]
    parts = min(cpu_threads.threads(), rows)
    bounds = [rows * k // parts for k in range(parts + 1)]

    def part(chunk: int, worker: int) -> None:
        lo, hi = bounds[chunk], bounds[chunk + 1]
        update(*(x[lo:hi] for x in arrays), *args)

    cpu_threads.run_chunks(part, parts)
