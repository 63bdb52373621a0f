"""Fixtures of the CPU-only CUDA tests: a fake `cupy` (fake_cupy.py) installed for one test."""

from __future__ import annotations

import sys
import types

import pytest
from fake_cupy import device_free_numpy, make_fake_cupy

import xnet.backends.kernel_check as kernel_check
from xnet.backends import Backend


@pytest.fixture
def install(monkeypatch):
    """install(fake) puts a fake `cupy` (and NumPy as array_api_compat.cupy) in sys.modules."""

    def put(fake: types.ModuleType) -> types.ModuleType:
        monkeypatch.setattr(kernel_check, "_kernels", {})  # each fake builds its own kernels
        # the backends made on the fake are forgotten after the test (backend_of finds none of them)
        monkeypatch.setattr(Backend, "_live", [])
        monkeypatch.setitem(sys.modules, "cupy", fake)
        monkeypatch.setitem(sys.modules, "array_api_compat.cupy", device_free_numpy())
        return fake

    return put


@pytest.fixture
def fake(install):
    """A fake `cupy` with one GPU whose kernels are compiled on the host; its log counts kernels and launches."""
    return install(make_fake_cupy())
