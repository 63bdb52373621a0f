"""The backend seam: transfers, seeding, strictness, and the missing-GPU error."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from xnet.backends import BackendUnavailable, available_backends, get_backend


def test_transfer_round_trip(backend, dtype):
    host = np.arange(12, dtype=dtype).reshape(3, 4) / 7
    dev = backend.asarray(host)
    back = backend.to_numpy(dev)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, host)


def test_creation_on_device(backend):
    z = backend.zeros((2, 3), "float32")
    o = backend.ones((2, 3), "float64")
    assert backend.to_numpy(z).sum() == 0 and backend.to_numpy(o).sum() == 6
    assert backend.to_numpy(backend.arange(4)).tolist() == [0, 1, 2, 3]
    # arrays made by the backend combine with each other (strict refuses mixed devices)
    assert backend.to_numpy(backend.xp.astype(z, backend.xp.float64) + o).sum() == 6


def test_seed_reproducible(backend):
    a = get_backend(backend, seed=5)
    draws = []
    for _ in range(2):
        a.rng.seed(42)
        draws.append(
            [
                backend.to_numpy(a.rng.normal((5,), dtype="float32")),
                backend.to_numpy(a.rng.uniform((5,), -1, 1, dtype="float64")),
                backend.to_numpy(a.rng.bernoulli((100,), 0.3)),
                backend.to_numpy(a.rng.permutation(10)),
                backend.to_numpy(a.rng.integers(0, 4, (6,))),
            ]
        )
    for x, y in zip(*draws, strict=True):
        np.testing.assert_array_equal(x, y)
    a.rng.seed(43)
    assert not np.array_equal(backend.to_numpy(a.rng.normal((5,))), draws[0][0])


def test_rng_statistics(backend):
    backend.rng.seed(0)
    n = backend.to_numpy(backend.rng.normal((20000,), 1.0, 2.0, dtype="float64"))
    assert abs(n.mean() - 1.0) < 0.05 and abs(n.std() - 2.0) < 0.05
    b = backend.to_numpy(backend.rng.bernoulli((20000,), 0.25))
    assert set(np.unique(b).tolist()) <= {0.0, 1.0} and abs(b.mean() - 0.25) < 0.02
    p = backend.to_numpy(backend.rng.permutation(50))
    assert sorted(p.tolist()) == list(range(50))


def test_rng_state_round_trip(backend):
    backend.rng.seed(7)
    backend.rng.normal((3,))
    state = backend.rng.state_dict()
    first = backend.to_numpy(backend.rng.normal((4,)))
    backend.rng.load_state_dict(state)
    np.testing.assert_array_equal(backend.to_numpy(backend.rng.normal((4,))), first)


def test_numpy_and_strict_draw_the_same_numbers():
    a, b = get_backend("cpu", seed=3), get_backend("strict", seed=3)
    np.testing.assert_array_equal(
        a.to_numpy(a.rng.normal((8,), dtype="float32")), b.to_numpy(b.rng.normal((8,), dtype="float32"))
    )


def test_strict_rejects_numpy_operand():
    b = get_backend("strict")
    x = b.ones((3,))
    with pytest.raises(TypeError):
        x * np.ones(3, dtype=np.float32)


def test_strict_rejects_device_mixing():
    b = get_backend("strict")
    import array_api_strict as xps

    with pytest.raises(ValueError, match="different devices"):
        b.ones((3,)) + xps.ones((3,))  # the second lives on the default device


def test_strict_no_float64_device():
    b = get_backend("strict:no_float64")
    assert b.to_numpy(b.ones((2,), "float32")).dtype == np.float32
    with pytest.raises(ValueError):
        b.ones((2,), "float64")


def test_unknown_device_lists_the_valid_ones():
    with pytest.raises(ValueError, match="cpu, cuda"):
        get_backend("tpu")


def test_missing_cupy_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail
    with pytest.raises(BackendUnavailable, match=r'CuPy is not installed.*pip install "xnet\[cuda12\]"'):
        get_backend("cuda")
    assert get_backend("auto").name == "numpy"
    statuses = {s.spec: s for s in available_backends()}
    assert statuses["cpu"].available and statuses["strict"].available
    assert not statuses["cuda"].available and "CuPy" in statuses["cuda"].detail


def test_cli_cuda_without_cupy_is_one_line_exit_2(tmp_path):
    # a directory named `cupy` with a failing __init__ shadows any real CuPy in the child
    fake = tmp_path / "cupy"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('simulated: no CuPy here')\n")
    env_path = f"{tmp_path}"
    proc = subprocess.run(
        [sys.executable, "-c", "from xnet.cli import main; main()", "info", "--device", "cuda"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "CuPy is not installed" in err[0] and "xnet[cuda12]" in err[0]
    assert "Traceback" not in proc.stderr
    assert "cuda     unavailable" in proc.stdout or "cuda    unavailable" in proc.stdout


def test_import_xnet_does_not_import_cupy():
    code = "import sys, xnet, xnet.nn, xnet.cli; print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
