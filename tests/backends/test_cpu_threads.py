"""cpu_threads: split matrix products equal a @ b; the thread decision follows the environment."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from xnet.backends import cpu_threads, get_backend

SHAPES = {
    "rows": ((256, 300), (300, 128)),  # M >= N: row blocks
    "columns": ((64, 300), (300, 512)),  # M < N: column blocks
    "batched": ((2, 64, 288), (2, 288, 600)),
    "broadcast": ((64, 288), (3, 288, 300)),
}


@pytest.mark.parametrize("case", sorted(SHAPES))
def test_split_product_equals_matmul(case, monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 2)
    monkeypatch.setattr(cpu_threads, "PARALLEL_MIN_MACS", 1)
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in SHAPES[case])
    out = cpu_threads.matmul(a, b)
    assert out.shape == (a @ b).shape and out.dtype == np.float32
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-4)


def test_split_product_of_transposed_views(monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 3)
    monkeypatch.setattr(cpu_threads, "PARALLEL_MIN_MACS", 1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((100, 70))
    g = rng.standard_normal((100, 30))
    np.testing.assert_allclose(cpu_threads.matmul(x.T, g), x.T @ g, rtol=1e-12)
    np.testing.assert_allclose(cpu_threads.matmul(g.T, x), g.T @ x, rtol=1e-12)


def test_backend_matmul_is_a_matrix_product(backend):
    a = backend.asarray(np.arange(6.0).reshape(2, 3), "float64")
    b = backend.asarray(np.arange(12.0).reshape(3, 4), "float64")
    expected = np.arange(6.0).reshape(2, 3) @ np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(backend.to_numpy(backend.matmul(a, b)), expected)


@pytest.mark.parametrize(
    ("env", "expected"),
    [({"XNET_NUM_THREADS": "1"}, "1"), ({"OPENBLAS_NUM_THREADS": "2"}, "1"), ({"XNET_NUM_THREADS": "3"}, None)],
)
def test_thread_decision_follows_the_environment(env, expected):
    code = "from xnet.backends import get_backend, cpu_threads; get_backend('cpu'); print(cpu_threads.threads())"
    ours = ("XNET_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    clean = {k: v for k, v in os.environ.items() if k not in ours}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True)
    got = out.stdout.strip()
    if expected is not None:
        assert got == expected
    else:  # 3 when NumPy's OpenBLAS could be switched to one thread, else BLAS keeps its threads
        assert got in ("3", "1")
        if cpu_threads._openblas_libraries():
            assert got == "3"


def test_numpy_backend_uses_the_split_product(monkeypatch):
    calls = []
    monkeypatch.setattr(cpu_threads, "matmul", lambda a, b: calls.append(1) or a @ b)
    get_backend("cpu").matmul(np.ones((2, 2)), np.ones((2, 2)))
    assert calls == [1]
