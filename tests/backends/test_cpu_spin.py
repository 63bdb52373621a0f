"""Polling waits (cpu_kernels/spin.py) and cpu_threads' hand-offs with them: the locks still decide."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from xnet.backends import cpu_threads
from xnet.backends.cpu_kernels import loader, spin

pytestmark = pytest.mark.skipif(loader.kernels() is None, reason="the compiled CPU kernels are off or unavailable")


NEVER = 1 << 62  # cycles: no look is late


def test_wait_for_sees_a_change_at_once_and_gives_up_after_its_looks():
    counter = np.zeros(1, np.int64)
    assert spin.wait_for(counter, 0, 1000, NEVER) == 0  # nothing changed: every look spent
    counter[0] = 3
    assert spin.wait_for(counter, 0, 1, NEVER) == 1
    assert spin.wait_for(counter, 3, 10, NEVER) == 0


def test_finish_then_wait_for_raises_the_count_before_it_polls():
    finished, counter = np.zeros(1, np.int64), np.zeros(1, np.int64)
    assert spin.finish_then_wait_for(finished, counter, 0, 100, NEVER) == 0  # no next hand-off
    assert finished[0] == 1
    counter[0] = 1
    assert spin.finish_then_wait_for(finished, counter, 0, 10**9, NEVER) == 1  # one at once
    assert finished[0] == 2


def test_wait_for_stops_at_a_late_look():
    # a look (one sched_yield) takes some cycles; allowed none, the first is late (x86's rdtsc)
    assert spin.wait_for(np.zeros(1, np.int64), 0, 1000, 0) == -1


def test_polling_pauses_after_a_late_look(monkeypatch):
    monkeypatch.setattr(cpu_threads, "_spin", spin.wait_for)
    monkeypatch.setattr(cpu_threads, "_spin_looks", 10**6)
    monkeypatch.setattr(cpu_threads, "_spin_late", 0)  # every look is late: the core counts as wanted
    monkeypatch.setattr(cpu_threads, "_spin_paused_until", 0.0)
    start = time.perf_counter()
    cpu_threads._poll(np.zeros(1, np.int64), 0)
    assert cpu_threads._spin_paused_until >= start + cpu_threads.SPIN_BACKOFF_SECONDS
    monkeypatch.setattr(cpu_threads, "_spin_late", NEVER)
    cpu_threads._poll(np.zeros(1, np.int64), 0)  # paused: returns at once, not after 10**6 looks
    assert time.perf_counter() - start < 0.1


def test_wait_for_sees_a_change_made_by_another_thread():
    counter = np.zeros(1, np.int64)

    def bump() -> None:
        time.sleep(0.02)
        counter[0] += 1

    thread = threading.Thread(target=bump)
    thread.start()
    start = time.perf_counter()
    assert spin.wait_for(counter, 0, 10**10, NEVER) == 1  # on the change, long before its looks run out
    assert time.perf_counter() - start < 5
    thread.join()


@pytest.mark.parametrize(
    ("looks", "finish"),
    [(1, None), (10**6, None), (1, spin.finish_then_wait_for), (10**6, spin.finish_then_wait_for)],
    ids=["sleeps-at-once", "polls", "sleeps-at-once-counted-without-gil", "polls-counted-without-gil"],
)
def test_hand_offs_give_the_same_results_whether_threads_poll_or_sleep(monkeypatch, looks, finish):
    monkeypatch.setattr(cpu_threads, "_threads", 3)
    monkeypatch.setattr(cpu_threads, "_spin", spin.wait_for)
    monkeypatch.setattr(cpu_threads, "_spin_finish", finish)
    monkeypatch.setattr(cpu_threads, "_spin_looks", looks)
    monkeypatch.setattr(cpu_threads, "_spin_late", NEVER)
    out = np.zeros(12)

    def work(chunk: int, worker: int) -> None:
        if chunk % 4 == 0:
            time.sleep(0.002)  # some hand-offs find the workers busy, some idle
        out[chunk] += chunk + 1

    for _ in range(20):
        cpu_threads.run_chunks(work, 12)
    np.testing.assert_array_equal(out, 20 * np.arange(1, 13))
    time.sleep(0.01)  # workers past their looks fall asleep on their locks, and still wake for work
    cpu_threads.run_chunks(work, 12)
    np.testing.assert_array_equal(out, 21 * np.arange(1, 13))


def test_an_error_on_a_polling_worker_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 2)
    monkeypatch.setattr(cpu_threads, "_spin", spin.wait_for)
    monkeypatch.setattr(cpu_threads, "_spin_looks", 10**5)
    monkeypatch.setattr(cpu_threads, "_spin_late", NEVER)

    def work(chunk: int, worker: int) -> None:
        if worker == 1:
            raise ValueError("from the worker")
        time.sleep(0.2)  # the caller keeps its chunk long enough that the worker takes the other

    with pytest.raises(ValueError, match="from the worker"):
        cpu_threads.run_chunks(work, 2)
    cpu_threads.run_chunks(lambda chunk, worker: None, 4)  # the workers still serve hand-offs


def test_loading_the_kernels_installs_the_polling_wait():
    assert cpu_threads._spin is spin.wait_for and cpu_threads._spin_finish is spin.finish_then_wait_for
    # the fastest of a few calibrations: a worker still polling after the test before (which gave
    # it 10**5 looks) can share this core, and each look then waits for it (2.6 us instead of 0.16)
    tries = []
    for _ in range(5):
        tries.append(spin.calibrate())
        time.sleep(0.02)
    per_look, cycles_per_second = min(tries)
    # SPIN_SECONDS of looks, and SPIN_LATE_SECONDS of cycles: within 10x of this calibration's
    assert 0.1 < cpu_threads._spin_looks * per_look / cpu_threads.SPIN_SECONDS < 10
    assert 0.1 < cpu_threads._spin_late / cycles_per_second / cpu_threads.SPIN_LATE_SECONDS < 10


def test_smaller_passes_are_shared_out_only_while_the_workers_poll(monkeypatch):
    from xnet.backends import get_backend
    from xnet.backends.cpu_kernels import table

    backend = get_backend("cpu")
    monkeypatch.setattr(backend, "threads", 2)
    n, per_item = 64, 8 * 28 * 28 * 4  # workload 3's first ReLU-pool input: 1.6 MB
    monkeypatch.setattr(cpu_threads, "_spin", spin.wait_for)
    monkeypatch.setattr(cpu_threads, "_spin_paused_until", 0.0)
    assert cpu_threads.polling() and len(table._split(backend, n, per_item)) == 2
    monkeypatch.setattr(cpu_threads, "_spin_paused_until", time.perf_counter() + 60)  # a busy machine
    assert not cpu_threads.polling() and table._split(backend, n, per_item) == [(0, n)]
    monkeypatch.setattr(cpu_threads, "_spin", None)  # kernels off: no polling either
    assert not cpu_threads.polling() and table._split(backend, n, per_item) == [(0, n)]


def test_off_x86_the_threads_do_not_poll(monkeypatch):
    from xnet.backends.cpu_kernels import table

    monkeypatch.setattr(cpu_threads, "_spin", None)
    monkeypatch.setattr(table.platform, "machine", lambda: "arm64")  # its cycle counter is not user-readable
    table.use_spin_wait()
    assert cpu_threads._spin is None and not cpu_threads.polling()
    monkeypatch.setattr(table.platform, "machine", lambda: "x86_64")
    table.use_spin_wait()
    assert cpu_threads._spin is spin.wait_for


def test_optimizer_updates_are_shared_out_from_fewer_values_while_the_workers_poll(monkeypatch):
    from xnet.backends.cpu_kernels import table

    monkeypatch.setattr(cpu_threads, "_threads", 2)
    calls: list[int] = []
    run_chunks = cpu_threads.run_chunks
    monkeypatch.setattr(cpu_threads, "run_chunks", lambda fn, n: calls.append(n) or run_chunks(fn, n))
    param, grad = np.zeros(150_000, np.float32), np.ones(150_000, np.float32)  # two 64k blocks, under 256k
    monkeypatch.setattr(cpu_threads, "_spin", spin.wait_for)
    monkeypatch.setattr(cpu_threads, "_spin_paused_until", 0.0)
    table.optimizer("sgd", (param, grad))({"lr": 0.5, "wd": 0.0, "decay": 0})  # no decay
    assert calls == [2]
    monkeypatch.setattr(cpu_threads, "_spin_paused_until", time.perf_counter() + 60)  # a busy machine
    table.optimizer("sgd", (param, grad))({"lr": 0.5, "wd": 0.0, "decay": 0})
    assert calls == [2]  # whole, on the calling thread
    np.testing.assert_array_equal(param, np.full(150_000, -1.0, np.float32))  # both steps, every value
