"""Where optimizer state lives: the namespace of parameter arrays, and host <-> device copies.

An optimizer sees only Parameters, not the backend, so it finds the array library from the
arrays themselves: NumPy arrays use `numpy` directly (no wrapper, which would cost time every
step), anything else the namespace array-api-compat reports (CuPy, array-api-strict).
"""

from __future__ import annotations

from types import ModuleType

import array_api_compat
import numpy as np

from xnet.backends import Array


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
