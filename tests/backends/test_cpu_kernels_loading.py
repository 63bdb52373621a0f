"""When the compiled CPU kernels run: switched off, Numba missing, a failed first-use check, the cache folder."""

from __future__ import annotations

import os
import sys
import threading
import warnings

import numpy as np
import pytest

from xnet.backends import get_backend
from xnet.backends.cpu_kernels import loader
from xnet.cli.info import cpu_kernels_line

needs_numba = pytest.mark.skipif(loader.kernels() is None, reason=f"compiled CPU kernels off: {loader.reason()}")


@pytest.fixture
def fresh_loader():
    """The loader decides anew in the test, and again (as the environment says) after it."""
    loader.reset()
    yield
    loader.reset()


def test_xnet_cpu_kernels_0_turns_them_all_off(monkeypatch, fresh_loader):
    monkeypatch.setenv("XNET_CPU_KERNELS", "0")
    backend = get_backend("cpu")
    x = np.ones((2, 3, 4, 4), np.float32)
    assert backend.fused_norm_relu_pool(x, None, None) is None
    assert backend.fused_softmax_cross_entropy(np.zeros((2, 3), np.float32), np.array([0, 1]), 0.0, 1.0) is None
    assert "XNET_CPU_KERNELS=0" in cpu_kernels_line()


def test_without_numba_the_reference_runs_and_info_says_why(monkeypatch, fresh_loader):
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` raises ImportError
    monkeypatch.delenv("XNET_CPU_KERNELS", raising=False)
    assert loader.kernels() is None
    from xnet.backends import get_backend
    from xnet.backends.fast_paths import OPTIMIZER_SCALARS

    scalars = dict.fromkeys(OPTIMIZER_SCALARS["adam"], 0)
    assert get_backend("cpu").adam_update(*(np.zeros(3, np.float32) for _ in range(4)), **scalars) is False
    assert "numba unavailable (ModuleNotFoundError" in cpu_kernels_line()
    assert "pip install numba" in cpu_kernels_line()


@needs_numba
def test_a_kernel_failing_its_first_use_check_warns_once_and_leaves_the_reference(monkeypatch):
    from xnet.backends.cpu_kernels import probes

    monkeypatch.setitem(probes.PROBES, "dropout", lambda dtype: "gave another mask or output")
    monkeypatch.setattr(probes, "_verdicts", {})
    backend = get_backend("cpu")
    stream = backend.rng.stream("dropout")
    x = np.ones((4, 5), np.float32)
    with pytest.warns(RuntimeWarning, match=r"dropout \(float32\) gave another mask.*XNET_CPU_KERNELS=0"):
        assert backend.fused_dropout(x, stream, 0.5, 2.0) is None
    assert stream.position == 0  # a declined kernel has not drawn
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        assert backend.fused_dropout(x, stream, 0.5, 2.0) is None


@needs_numba
def test_a_kernel_that_raises_warns_with_the_error(monkeypatch):
    from xnet.backends.cpu_kernels import probes

    def broken(dtype):
        raise RuntimeError("no LLVM here\nsecond line")

    monkeypatch.setitem(probes.PROBES, "norm_relu_pool", broken)
    monkeypatch.setattr(probes, "_verdicts", {})
    monkeypatch.setattr(probes, "_with_fresh_cache_on_error", lambda name, run: run())
    with pytest.warns(RuntimeWarning, match=r"norm_relu_pool \(float64\) failed \(RuntimeError: no LLVM here\)"):
        assert get_backend("cpu").fused_norm_relu_pool(np.ones((1, 1, 2, 2)), None, None) is None


def test_a_read_only_install_caches_in_the_user_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", "")  # unset (and restored after the test)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(loader.os, "access", lambda path, mode: False)
    loader._place_cache()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "xnet" / "numba")
    assert (tmp_path / "xnet" / "numba").is_dir()


def test_a_cache_folder_the_user_chose_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(loader.os, "access", lambda path, mode: False)
    loader._place_cache()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path)


@needs_numba
def test_a_cache_that_fails_to_load_is_deleted_and_the_kernel_rebuilt(monkeypatch, tmp_path):
    from xnet.backends.cpu_kernels import norm_pool, probes

    monkeypatch.setattr(norm_pool.forward._cache, "_cache_path", str(tmp_path))
    corrupt, other = tmp_path / "norm_pool.forward-20.py311.nbi", tmp_path / "someone_else.f-1.py311.nbi"
    corrupt.write_text("garbage")
    other.write_text("kept")
    tries = []

    def run():
        tries.append(corrupt.exists())
        if corrupt.exists():
            raise ValueError("invalid literal for int() with base 10: 'arbage'")  # what Numba raises
        return None

    assert probes._with_fresh_cache_on_error("norm_relu_pool", run) is None
    assert tries == [True, False] and other.exists()


@needs_numba
def test_warm_up_loads_the_kernels_on_a_thread_that_the_first_call_waits_for(monkeypatch, fresh_loader):
    monkeypatch.delenv("XNET_CPU_KERNELS", raising=False)
    thread = loader.load_in_background()
    assert thread is not None and thread.name == "xnet-cpu-kernels-import"
    table = loader.kernels()  # the thread's decision (the loader's lock: one import, by whichever comes first)
    thread.join(timeout=60)
    assert table is not None and loader.kernels() is table and not thread.is_alive()
    assert loader.load_in_background() is None  # decided: nothing more to start


def test_warm_up_starts_nothing_when_the_kernels_are_off(monkeypatch, fresh_loader):
    monkeypatch.setenv("XNET_CPU_KERNELS", "0")
    get_backend("cpu").warm_up()
    assert "xnet-cpu-kernels-import" not in {t.name for t in threading.enumerate()}
    assert loader.kernels() is None
