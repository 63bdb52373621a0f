"""A test backend: array-api-strict on a non-default device.

It refuses NumPy operands, arrays from another device and calls outside the standard, so the
CPU-only test suite catches what would break on CuPy. It is not meant for users' training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xnet.backends import dlpack
from xnet.backends.base import Backend, BackendUnavailable
from xnet.backends.rng import Rng


class StrictBackend(Backend):
    """array-api-strict on Device('device1') (or 'no_float64' to catch float64 creeping in)."""

    name = "strict"
    launch_bound = True

    def __init__(self, seed: int = 0, device: str = "device1"):
        try:
            import array_api_strict
        except ImportError as e:  # pragma: no cover - the dev extra installs it
            raise BackendUnavailable(
                'the strict backend needs array-api-strict: pip install "xnet[dev]"'
            ) from e
        self.xp = array_api_strict
        self.device = array_api_strict.Device(device)
        self.rng = Rng(self, seed)  # the Array API reference computes its words
        self.remember()

    @property
    def device_name(self) -> str:
        return f"strict:{self.device._device}"

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        dt = self.dtype(dtype) if dtype is not None else None
        if dlpack.foreign(a, (self.xp._array_object.Array, np.ndarray)):
            a = dlpack.take(self.xp.from_dlpack, a, device=self.device)
        if isinstance(a, self.xp._array_object.Array):
            # moving between devices is an explicit transfer, as on a GPU
            a = self.xp.asarray(a, copy=True, device=self.device) if a.device != self.device else a
            return a if dt is None else self.xp.astype(a, dt)
        host = np.asarray(a)
        if dt is None and host.dtype == np.float64 and self.device == self.xp.Device("no_float64"):
            raise ValueError("float64 data given to a no_float64 strict device")
        return self.xp.asarray(host, dtype=dt, device=self.device)

    def owns(self, a: Any) -> bool:
        return isinstance(a, self.xp._array_object.Array) and a.device == self.device

    def host_buffer(self, a: Any) -> np.ndarray:
        # the "device" is host memory: the NumPy array inside is the one MPI may read and write
        return a._array

    def to_numpy(self, a: Any) -> np.ndarray:
        # the strict namespace keeps a NumPy array inside; reading it is the host transfer
        return np.asarray(self.xp.asarray(a, copy=True, device=self.xp.Device("CPU_DEVICE"))._array)
