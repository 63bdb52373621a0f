"""cpu_threads: split matrix products equal a @ b; the thread decision follows the environment."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from xnet.backends import cpu_threads, get_backend

SHAPES = {
    "rows": ((300, 128), (128, 96)),  # M >= N: row blocks
    "columns": ((64, 300), (300, 512)),  # M < N: column blocks
    "inner": ((256, 300), (300, 128)),  # K the longest side: blocks of K, their products added
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


@pytest.mark.parametrize("threads", [2, 3])
def test_inner_blocks_add_up_to_the_whole_product_exactly(threads, monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", threads)
    monkeypatch.setattr(cpu_threads, "PARALLEL_MIN_MACS", 1)
    rng = np.random.default_rng(4)
    # small integers: every partial sum is exact, so a block left out or added twice would show
    a = rng.integers(-4, 5, (40, 200)).astype(np.float32)
    b = rng.integers(-4, 5, (200, 30)).astype(np.float32)
    want = a.astype(np.int64) @ b.astype(np.int64)
    for _ in range(3):  # whichever thread runs which block
        np.testing.assert_array_equal(cpu_threads.matmul(a, b), want)
    out = np.full((40, 30), 5.0, np.float32)
    assert cpu_threads.matmul(a, b, out=out) is out
    np.testing.assert_array_equal(out, want)


def test_split_product_of_transposed_views(monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 3)
    monkeypatch.setattr(cpu_threads, "PARALLEL_MIN_MACS", 1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((100, 70))
    g = rng.standard_normal((100, 30))
    np.testing.assert_allclose(cpu_threads.matmul(x.T, g), x.T @ g, rtol=1e-12)
    np.testing.assert_allclose(cpu_threads.matmul(g.T, x), g.T @ x, rtol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_split_product_writes_into_out(threads, monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", threads)
    monkeypatch.setattr(cpu_threads, "PARALLEL_MIN_MACS", 1)
    rng = np.random.default_rng(2)
    x, g = rng.standard_normal((40, 70)), rng.standard_normal((40, 30))
    out = np.full((70, 30), 7.0)
    assert cpu_threads.matmul(x.T, g, out=out) is out  # a weight gradient, written in place
    np.testing.assert_allclose(out, x.T @ g, rtol=1e-12)
    with pytest.raises(ValueError):  # a misfit out gets NumPy's own error, not a wrong write
        cpu_threads.matmul(x.T, g, out=np.empty((70, 31)))


def test_backend_matmul_writes_into_out(backend):
    a = backend.asarray(np.arange(6.0).reshape(2, 3), "float64")
    b = backend.asarray(np.arange(12.0).reshape(3, 4), "float64")
    out = backend.zeros((2, 4), "float64")
    assert backend.matmul(a, b, out=out) is out
    np.testing.assert_array_equal(backend.to_numpy(out), np.arange(6.0).reshape(2, 3) @ np.arange(12.0).reshape(3, 4))


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
        if cpu_threads.openblas_libraries():
            assert got == "3"


def test_numpy_backend_uses_the_split_product(monkeypatch):
    calls = []
    monkeypatch.setattr(cpu_threads, "matmul", lambda a, b, out=None: calls.append(1) or a @ b)
    get_backend("cpu").matmul(np.ones((2, 2)), np.ones((2, 2)))
    assert calls == [1]


def test_run_chunks_runs_each_chunk_once_and_spreads_them(monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 3)
    seen: list[tuple[int, int]] = []

    def fn(chunk: int, worker: int) -> None:
        seen.append((chunk, worker))
        np.dot(np.ones((200, 200)), np.ones((200, 200)))  # releases the GIL: others take chunks

    cpu_threads.run_chunks(fn, 40)
    assert sorted(c for c, _ in seen) == list(range(40))
    assert {w for _, w in seen} <= {0, 1, 2}


def test_run_chunks_passes_an_error_back(monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 2)

    def fn(chunk: int, worker: int) -> None:
        if chunk == 5:
            raise FloatingPointError("overflow in chunk 5")

    with pytest.raises(FloatingPointError, match="chunk 5"):
        cpu_threads.run_chunks(fn, 8)


def test_batch_chunks_cover_the_batch_within_the_budget(backend, monkeypatch):
    monkeypatch.setattr(backend, "chunk_bytes", 1000, raising=False)
    monkeypatch.setattr(backend, "threads", 1, raising=False)
    chunks = backend.batch_chunks(10, 300)  # 3 items per chunk at most: 4 chunks
    assert chunks == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert backend.batch_chunks(3, 5000) == [(0, 1), (1, 2), (2, 3)]  # one item at least
    assert backend.batch_chunks(10, 1) == [(0, 10)]
    assert backend.batch_chunks(0, 300) == [(0, 0)]  # an empty batch is one empty chunk
    # with 3 threads: a multiple of 3 chunks, so no thread waits for the others' last chunk
    monkeypatch.setattr(backend, "threads", 3, raising=False)
    assert backend.batch_chunks(10, 1) == [(0, 3), (3, 6), (6, 10)]
    assert len(backend.batch_chunks(10, 300)) == 6
    assert backend.batch_chunks(2, 1) == [(0, 1), (1, 2)]


def test_an_error_on_the_calling_thread_still_waits_for_the_workers(monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 2)
    done = []

    def fn(chunk: int, worker: int) -> None:
        if worker == 0:
            raise ValueError("stop")
        np.dot(np.ones((300, 300)), np.ones((300, 300)))
        done.append(chunk)

    with pytest.raises(ValueError, match="stop"):
        cpu_threads.run_chunks(fn, 4)
    count = len(done)
    # the workers are free again: a new run uses them and sees only its own chunks
    cpu_threads.run_chunks(lambda chunk, worker: done.append(100 + chunk), 3)
    assert sorted(done[count:]) == [100, 101, 102]


@pytest.mark.parametrize(
    ("size", "parts", "macs"),
    [(256, 2, 128 * 784 * 256), (12544, 2, 12544 * 288 * 64), (100, 3, 5_000_000), (32, 2, 1 << 22)],
)
def test_split_gives_the_calling_thread_the_larger_block(size, parts, macs):
    bounds = cpu_threads._split(size, parts, macs)
    sizes = [hi - lo for lo, hi in zip(bounds, bounds[1:], strict=False)]
    assert bounds[0] == 0 and bounds[-1] == size and len(sizes) == parts and min(sizes) >= 1
    # the caller starts at once while a worker wakes: its block is the largest, a multiple of 8
    assert sizes[0] >= max(sizes[1:]) and sizes[0] % 8 == 0
    assert max(sizes[1:]) - min(sizes[1:]) <= 1
    # the extra is what one core does while a worker wakes: a small share of a large product
    if macs > 100 * cpu_threads.HANDOFF_MACS:
        assert sizes[0] - sizes[1] <= 0.02 * size + 8


# -- usable cores: affinity and the cgroup v2 CPU quota ------------------------------------------------


def fake_cgroup(tmp_path, limits: dict[str, str], own: str = "/docker/abc", v2: bool = True):
    """A cgroup v2 tree under tmp_path/cg with cpu.max files {relative folder: content}, and a /proc/self/cgroup."""
    root = tmp_path / "cg"
    (root / own.lstrip("/")).mkdir(parents=True)
    for folder, content in limits.items():
        (root / folder / "cpu.max").write_text(content + "\n")
    proc = tmp_path / "cgroup"
    proc.write_text(f"0::{own}\n" if v2 else f"4:cpu,cpuacct:{own}\n3:memory:{own}\n")
    return root, proc


def test_a_2_cpu_quota_on_a_64_core_host_gives_2_workers(tmp_path, monkeypatch):
    root, proc = fake_cgroup(tmp_path, {"docker/abc": "200000 100000"})
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert cpu_threads.usable_cores(root, proc) == 2
    # and the thread decision takes it: 2 workers
    monkeypatch.setattr(cpu_threads, "CGROUP_ROOT", root)
    monkeypatch.setattr(cpu_threads, "PROC_CGROUP", proc)
    for name in ("XNET_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cpu_threads, "_blas_to_one_thread", lambda: True)
    assert cpu_threads._decide() == 2


@pytest.mark.parametrize(
    ("limits", "v2", "expected"),
    [
        ({"docker/abc": "150000 100000"}, True, 2),  # 1.5 CPUs: two threads keep the quota busy
        ({"docker": "300000 100000", "docker/abc": "max 100000"}, True, 3),  # a parent's quota counts
        ({"docker": "400000 100000", "docker/abc": "100000 100000"}, True, 1),  # the tightest wins
        ({"docker/abc": "max 100000"}, True, None),  # no limit
        ({}, True, None),  # no cpu.max at all
        ({"docker/abc": "200000 100000"}, False, None),  # cgroup v1: not read
    ],
)
def test_cgroup_cpus_reads_the_quota(tmp_path, limits, v2, expected):
    root, proc = fake_cgroup(tmp_path, limits, v2=v2)
    assert cpu_threads.cgroup_cpus(root, proc) == expected


def test_no_cgroup_file_counts_the_affinity(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert cpu_threads.usable_cores(tmp_path, tmp_path / "absent") == 3


def test_blas_goes_to_one_thread_through_threadpoolctl(monkeypatch):
    import threadpoolctl

    calls = []
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: [{"user_api": "blas", "internal_api": "mkl"}])
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", lambda limits, user_api: calls.append((limits, user_api)))
    assert cpu_threads._blas_to_one_thread() and calls == [(1, "blas")]  # MKL too, not only OpenBLAS
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: [])
    assert not cpu_threads._blas_to_one_thread()


def test_a_background_job_runs_on_a_worker_and_gives_its_result(monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 2)
    monkeypatch.setattr(cpu_threads, "BACKGROUND_MIN_BYTES", 0)
    monkeypatch.setattr(cpu_threads, "polling", lambda: True)
    job = cpu_threads.background(lambda: (threading.current_thread().name, 7), 1)
    assert job() == ("xnet-cpu", 7)
    assert job() == ("xnet-cpu", 7)  # asked again: the same result, nothing run twice


def test_a_small_single_threaded_or_busy_machines_job_waits_for_its_caller(monkeypatch):
    def fn():
        return threading.current_thread().name

    monkeypatch.setattr(cpu_threads, "_threads", 2)
    monkeypatch.setattr(cpu_threads, "polling", lambda: True)
    assert cpu_threads.background(fn, cpu_threads.BACKGROUND_MIN_BYTES - 1) is fn  # the hand-off would cost more
    monkeypatch.setattr(cpu_threads, "polling", lambda: False)  # a busy machine, or no compiled kernels
    assert cpu_threads.background(fn, 1 << 30) is fn
    monkeypatch.setattr(cpu_threads, "polling", lambda: True)
    monkeypatch.setattr(cpu_threads, "_threads", 1)
    assert cpu_threads.background(fn, 1 << 30) is fn


def test_a_background_error_is_raised_when_the_result_is_asked_for(monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 2)
    monkeypatch.setattr(cpu_threads, "BACKGROUND_MIN_BYTES", 0)
    monkeypatch.setattr(cpu_threads, "polling", lambda: True)

    def fail():
        raise RuntimeError("gather failed")

    job = cpu_threads.background(fail, 1)
    with pytest.raises(RuntimeError, match="gather failed"):
        job()
    # the workers are free again: a split runs on them
    seen = set()
    cpu_threads.run_chunks(lambda chunk, worker: seen.add(worker), 8)
    assert cpu_threads._background is None


def test_a_split_waits_for_the_background_job_first(monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 2)
    monkeypatch.setattr(cpu_threads, "BACKGROUND_MIN_BYTES", 0)
    monkeypatch.setattr(cpu_threads, "polling", lambda: True)
    order = []

    def slow():
        time.sleep(0.05)
        order.append("job")
        return "done"

    job = cpu_threads.background(slow, 1)
    cpu_threads.run_chunks(lambda chunk, worker: order.append("chunk"), 2)  # needs the worker the job holds
    assert order == ["job", "chunk", "chunk"]
    assert job() == "done"  # collected by the split, still there for its caller
    assert cpu_threads._background is None and not cpu_threads._busy.locked()


def test_a_new_background_job_collects_the_one_left_behind(monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 2)
    monkeypatch.setattr(cpu_threads, "BACKGROUND_MIN_BYTES", 0)
    monkeypatch.setattr(cpu_threads, "polling", lambda: True)
    cpu_threads.background(lambda: 1, 1)  # never asked for, as a loop left early leaves it
    assert cpu_threads.background(lambda: 2, 1)() == 2
    assert not cpu_threads._busy.locked()


def test_numpy_backend_runs_background_jobs_on_its_worker(monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 2)
    monkeypatch.setattr(cpu_threads, "BACKGROUND_MIN_BYTES", 0)
    monkeypatch.setattr(cpu_threads, "polling", lambda: True)
    job = get_backend("numpy").background(lambda: threading.current_thread().name, 1)
    assert job() == "xnet-cpu"


def test_a_background_job_that_splits_work_itself_runs_it_serially(monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 2)
    monkeypatch.setattr(cpu_threads, "BACKGROUND_MIN_BYTES", 0)
    monkeypatch.setattr(cpu_threads, "polling", lambda: True)

    def job():
        seen = []
        cpu_threads.run_chunks(lambda chunk, worker: seen.append((chunk, worker)), 4)  # would wait for itself
        return seen

    got = []
    caller = threading.Thread(target=lambda: got.append(cpu_threads.background(job, 1)()), daemon=True)
    caller.start()
    caller.join(30)  # a job waiting for itself would never end: fail instead of hanging the suite
    assert not caller.is_alive(), "the background job waited for itself"
    assert got == [[(0, 0), (1, 0), (2, 0), (3, 0)]]
    assert not cpu_threads._busy.locked()


def test_a_dense_layer_picks_its_product_once_per_batch_size(monkeypatch):
    from xnet.nn import Dense, build_on

    backend = get_backend("cpu")
    monkeypatch.setattr(cpu_threads, "_threads", 2)
    assert backend.matmul_for(16, 784, 128) is np.matmul  # too small to split: NumPy's own
    monkeypatch.setattr(cpu_threads, "PARALLEL_MIN_MACS", 1)
    assert backend.matmul_for(16, 784, 128) == backend.matmul  # the split product
    calls = []
    monkeypatch.setattr(cpu_threads, "matmul", lambda a, b, out=None: calls.append(1) or np.matmul(a, b, out=out))
    with build_on(backend, "float64"):
        layer = Dense(40, 30)
    x = np.random.default_rng(0).standard_normal((64, 40))
    g = np.ones((64, 30))
    y = layer.forward(x)
    layer.backward(g)
    np.testing.assert_array_equal(y, x @ layer.weight.data + layer.bias.data)
    assert len(calls) == 3  # forward, weight and input gradients: the split product for this batch size
    monkeypatch.setattr(cpu_threads, "PARALLEL_MIN_MACS", 1 << 40)
    layer.forward(x)
    assert len(calls) == 4  # the same batch size keeps its pick
    layer.forward(x[:5])
    assert len(calls) == 4  # a new batch size is picked again: now too small
