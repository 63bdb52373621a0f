"""Fixtures shared by every test: the backends present here, the float dtypes, the data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xnet.backends import BackendUnavailable, get_backend


def _cuda_skip_reason() -> str | None:
    try:
        get_backend("cuda")
    except BackendUnavailable as e:
        return f"cupy backend unavailable: {e}"
    return None


_CUDA_SKIP = _cuda_skip_reason()

BACKEND_PARAMS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("strict", id="strict"),
    pytest.param(
        "cuda", id="cupy", marks=pytest.mark.skipif(_CUDA_SKIP is not None, reason=_CUDA_SKIP or "")
    ),
]


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request):
    """Every backend present: numpy and strict always, cupy when it imports and sees a GPU."""
    return get_backend("cpu" if request.param == "numpy" else request.param, seed=0)


@pytest.fixture(params=["float32", "float64"])
def dtype(request) -> str:
    """Both float dtypes."""
    return request.param


@pytest.fixture
def mnist_dir() -> Path:
    """The folder holding the original MNIST files (XNET_DATA_DIR/mnist); skips when absent."""
    root = os.environ.get("XNET_DATA_DIR")
    if not root or not (Path(root) / "mnist").is_dir():
        pytest.skip("real MNIST not found: set XNET_DATA_DIR to a folder holding mnist/")
    return Path(root) / "mnist"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line per distinct skip reason (with its count) instead of one per test location."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reasons[reason.removeprefix("Skipped: ")] = reasons.get(reason.removeprefix("Skipped: "), 0) + 1
    if reasons:
        terminalreporter.section("skip reasons")
        for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
            terminalreporter.line(f"{count:5d} skipped: {reason}")
