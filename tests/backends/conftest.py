"""Fixtures of the CPU-only CUDA tests: a fake `cupy` (fake_cupy.py) installed for one test."""

from __future__ import annotations

import sys
import types

import pytest
from fake_cupy import device_free_numpy, make_fake_cupy

import xnet.backends.fast_paths as fast_paths
import xnet.backends.kernel_check as kernel_check


@pytest.fixture
def install(monkeypatch):
    """install(fake) puts a fake `cupy` (and NumPy as array_api_compat.cupy) in sys.modules."""

    def put(fake: types.ModuleType) -> types.ModuleType:
        monkeypatch.setattr(kernel_check, "_kernels", {})  # each fake builds its own kernels
        monkeypatch.setattr(fast_paths, "_checked", {})  # and probes them once
        monkeypatch.setitem(sys.modules, "cupy", fake)
        monkeypatch.setitem(sys.modules, "array_api_compat.cupy", device_free_numpy())
        return fake

    return put


@pytest.fixture
def fake(install):
    """A fake `cupy` with one GPU whose kernels are compiled on the host; its log counts kernels and launches."""
    return install(make_fake_cupy())
