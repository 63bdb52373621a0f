"""Fixtures shared by every test: the backends present here, the float dtypes, the data dir."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import threading
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


# -- a local MNIST mirror, for the download and data-folder tests ----------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def serve():
    """serve(folder) -> base URL of an HTTP server on 127.0.0.1 serving `folder`."""
    servers = []

    def start(folder):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """A tiny MNIST-shaped set in tmp/served whose md5s replace the official ones."""
    from digitsets import write_digit_set

    from xnet.data import mnist as mnist_mod

    folder = write_digit_set(tmp_path / "served", 24, 6)
    for name in mnist_mod.MNIST_FILES.values():
        md5 = hashlib.md5((folder / name).read_bytes()).hexdigest()
        monkeypatch.setitem(mnist_mod.MNIST_MD5, name, md5)
    return folder


@pytest.fixture
def fashion_isolated(monkeypatch, tmp_path):
    """No $XNET_DATA_DIR, an empty cache, no default Fashion-MNIST mirrors: tmp_path."""
    monkeypatch.delenv("XNET_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XNET_FASHION_MNIST_MIRRORS", "")
    return tmp_path


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
