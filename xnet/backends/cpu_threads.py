"""How the NumPy backend uses the CPU cores: BLAS on one thread, large products split by xnet.

OpenBLAS's own worker threads spin while they wait for work. On a machine whose cores are all
busy (other trainings, a browser, a second `xnet train`), a spinning worker waits for a time
slice on every matrix product, and one epoch measured 20x slower than on one thread (MLP,
2 cores, load 5). So xnet asks BLAS for one thread (through threadpoolctl, which knows OpenBLAS,
MKL, BLIS and FlexiBLAS) and splits the large products itself over worker threads that sleep
when idle: on an idle machine the cores still share the work, on a busy one the parts simply run
one after the other. The compiled CPU kernels (cpu_kernels/) run on the same threads.

The cores counted are those the process may use: its CPU affinity, and its cgroup v2 CPU quota
(cpu.max: a container limited to 2 CPUs on a 64-core host gets 2 threads, not 64).

Set XNET_NUM_THREADS=1 to keep everything on one thread. An OPENBLAS_NUM_THREADS or
OMP_NUM_THREADS already set in the environment is respected: then xnet leaves BLAS alone and
splits nothing.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import threadpoolctl

# products below this many multiply-adds (~0.15 ms on one AVX-512 core) stay on the calling
# thread: inside a training step a worker woken for part of a smaller one costs more than it
# saves (workload 3's 64x784 @ 784x128 dense layer, 6.4M multiply-adds, idle Intel Xeon: forward
# 0.235 ms split over 2 threads, 0.12 ms on one; backward 0.41 and 0.22 ms)
PARALLEL_MIN_MACS = 1 << 24
# A sleeping worker starts its block ~45 us after the hand-off; the calling thread starts at once
# and meanwhile does about this many multiply-adds (one core, AVX2 kernels). So the caller takes
# that much more of a split product and all blocks end together: 128x784 @ 784x256 took 256-265
# instead of 268-277 us on 2 cores (one core: 418-426 us)
HANDOFF_MACS = 5 << 19
# a job handed to a worker in the background (the next batch's gather) pays ~40-50 us of GIL
# hand-overs between the two threads, whose Python parts take turns: gathering the next batch after
# the forward of a 784-256-10 MLP (alternating epochs, idle 2-core Xeon VM) cost 35 us a step for
# 16 rows (50 KB), 18 us for 64, nothing for 96 (301 KB), and saved 28 us for 128 rows and 70 for 256
BACKGROUND_MIN_BYTES = 3 << 17
CGROUP_ROOT, PROC_CGROUP = Path("/sys/fs/cgroup"), Path("/proc/self/cgroup")

# how long a worker that finished, or a caller waiting for one, polls before it sleeps (see
# cpu_kernels/spin.py): workload 3's step measured 3.15 ms without polling, 2.98 ms with 0.75 ms
# of it, 2.84 ms with 3 ms and 2.88 ms with 9 ms (workload 1: 1.15 -> 0.87 ms with 3 ms)
SPIN_SECONDS = 0.003
# a look that took longer means another runnable thread had the core (the scheduler gives it a
# time slice, 0.75 ms or more): polling then stops, and stays off for SPIN_BACKOFF_SECONDS, so that
# on a busy machine the threads sleep as they did. An idle 2-core VM saw no look that long in 300
# polls of 3 ms (1 in 300 took over 50 us); with 50 us and a 1 s pause such rare stalls switched
# polling off for most of a run, and workload 3's step lost most of its gain
SPIN_LATE_SECONDS = 0.5e-3
SPIN_BACKOFF_SECONDS = 0.1

_lock = threading.Lock()
_threads: int | None = None  # decided on first use
_busy = threading.Lock()  # held while the workers run a split product, or a background job
_workers: list[_Worker] = []
_background: _Background | None = None  # the job started by background() and not yet collected
T = TypeVar("T")
# wait(counter, seen, looks, late) -> 1 when counter[0] != seen within `looks` looks, 0 when not,
# -1 when a look took more than `late` cycles: installed by the compiled kernels when they load
# (cpu_kernels/table.py), with the looks that make SPIN_SECONDS and the cycles of SPIN_LATE_SECONDS
_spin: Callable[[np.ndarray, int, int, int], int] | None = None
# finished[0] += 1, then as _spin: a worker's end of a job (spin.finish_then_wait_for)
_spin_finish: Callable[[np.ndarray, np.ndarray, int, int, int], int] | None = None
_spin_looks = _spin_late = 0
_spin_paused_until = 0.0  # perf_counter time before which nobody polls


def use_spin_wait(
    wait: Callable[[np.ndarray, int, int, int], int] | None,
    looks: int = 0,
    late: int = 0,
    finish: Callable[[np.ndarray, np.ndarray, int, int, int], int] | None = None,
) -> None:
    """Let workers and waiting callers poll with `wait` before sleeping; None: sleep at once.
    `finish(finished, counter, seen, looks, late)`: finished[0] += 1 then `wait`, without the GIL."""
    global _spin, _spin_finish, _spin_looks, _spin_late, _spin_paused_until
    _spin, _spin_looks, _spin_late, _spin_paused_until = wait, looks, late, 0.0
    _spin_finish = finish if wait is not None else None


def polling() -> bool:
    """Whether idle workers poll for hand-offs now (installed, and not paused by a busy machine):
    then a hand-off costs ~30 us (the GIL still changes hands) instead of a wake-up, and smaller
    passes are worth sharing out."""
    return _spin is not None and time.perf_counter() >= _spin_paused_until


def _poll(counter: np.ndarray, seen: int) -> None:
    """Wait for counter[0] != seen by polling, where polling is on; returns at once, before, or after
    its looks: the caller then takes its lock, which decides."""
    global _spin_paused_until
    wait = _spin
    if wait is None or time.perf_counter() < _spin_paused_until:
        return
    if wait(counter, seen, _spin_looks, _spin_late) < 0:  # the core is wanted elsewhere
        _spin_paused_until = time.perf_counter() + SPIN_BACKOFF_SECONDS


def _finish_then_poll(finish: Callable[[np.ndarray, np.ndarray, int, int, int], int], finished: np.ndarray,
                      counter: np.ndarray, seen: int) -> None:  # fmt: skip
    """finished[0] += 1 without the GIL, then as _poll(counter, seen) (polling is on: the caller checked)."""
    global _spin_paused_until
    if finish(finished, counter, seen, _spin_looks, _spin_late) < 0:  # the core is wanted elsewhere
        _spin_paused_until = time.perf_counter() + SPIN_BACKOFF_SECONDS


def usable_cores(cgroup_root: Path | None = None, proc_cgroup: Path | None = None) -> int:
    """How many cores this process may keep busy: its affinity, capped by its cgroup v2 CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cgroup_cpus(cgroup_root or CGROUP_ROOT, proc_cgroup or PROC_CGROUP)
    return max(1, min(cores, quota)) if quota is not None else cores


def cgroup_cpus(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int | None:
    """The CPUs the cgroup v2 quota allows (ceil of quota / period, the tightest of the process's
    cgroup and its parents), or None where there is no quota or no cgroup v2 (not Linux, v1)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    # cgroup v2 has one line "0::/path"; v1 lines name their controllers
    paths = [line[3:] for line in lines if line.startswith("0::")]
    if not paths:
        return None
    folder, best = cgroup_root / paths[0].strip().lstrip("/"), None
    while True:
        cpus = _quota_cpus(folder / "cpu.max")
        if cpus is not None:
            best = cpus if best is None else min(best, cpus)
        if folder == cgroup_root or cgroup_root not in folder.parents:
            return best
        folder = folder.parent


def _quota_cpus(cpu_max: Path) -> int | None:
    """cpu.max holds "<quota> <period>" in microseconds, or "max <period>" for no limit."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError, ZeroDivisionError):  # absent, "max", or not numbers
        return None


def openblas_libraries() -> list[str]:
    """Paths of the OpenBLAS libraries loaded in this process (NumPy's wheels bundle one)."""
    return [info["filepath"] for info in threadpoolctl.threadpool_info() if info.get("internal_api") == "openblas"]


def _blas_to_one_thread() -> bool:
    """Ask every BLAS loaded (OpenBLAS, MKL, BLIS, FlexiBLAS) for one thread; False when none is known."""
    found = [info for info in threadpoolctl.threadpool_info() if info.get("user_api") == "blas"]
    if not found:
        return False
    threadpoolctl.threadpool_limits(limits=1, user_api="blas")  # kept: not used as a context manager
    return True


def threads() -> int:
    """How many threads xnet's NumPy kernels use (1: no splitting); decided once per process."""
    global _threads
    if _threads is None:
        with _lock:
            if _threads is None:
                _threads = _decide()
    return _threads


def _decide() -> int:
    wanted = os.environ.get("XNET_NUM_THREADS")
    if wanted is not None:
        try:
            n = max(1, int(wanted))
        except ValueError:
            n = usable_cores()
    elif os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"):
        return 1  # the user chose BLAS's threading: leave it as it is
    else:
        n = usable_cores()
    # without a BLAS threadpoolctl can switch to one thread (Accelerate), its threads stay in charge
    return n if _blas_to_one_thread() else 1


class _Worker:
    """A daemon thread that runs one function per hand-off: two plain locks, no queue and no
    futures, so a hand-off costs ~15 us here instead of a ThreadPoolExecutor's ~55 us. A whole
    round trip (hand off an empty function, wait for it) measured ~45 us on an idle 2-core VM:
    the kernel wakes the sleeping thread, then the waiting one. Work split over the threads must
    save more than that. With the compiled kernels loaded, each side first polls a counter for
    SPIN_SECONDS (cpu_kernels/spin.py), so that hand-offs close together skip the kernel's wake-up;
    the locks still decide, the counters only shorten the wait."""

    def __init__(self) -> None:
        self._go, self._done = threading.Lock(), threading.Lock()
        self._go.acquire()
        self._done.acquire()
        self._fn: Callable[[], None] | None = None
        self._error: BaseException | None = None
        # hand-offs started and finished, counted on both sides, for the polling waits
        self._started, self._finished = np.zeros(1, np.int64), np.zeros(1, np.int64)
        self._taken = self._collected = 0
        self.thread = threading.Thread(target=self._loop, name="xnet-cpu", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        _poll(self._started, self._taken)
        while True:
            self._go.acquire()  # at once after a hand-off seen while polling; else sleeps until one
            self._taken += 1
            try:
                self._fn()
            except BaseException as e:  # handed back to the caller by wait()
                self._error = e
            finish = _spin_finish
            if finish is not None and polling():
                self._done.release()
                # the finished count goes up once this thread has let go of the GIL (spin.py), then
                # it polls for the next hand-off; the locks decide, the counts only shorten the waits
                _finish_then_poll(finish, self._finished, self._started, self._taken)
            else:
                self._finished[0] += 1
                self._done.release()
                _poll(self._started, self._taken)

    def start(self, fn: Callable[[], None]) -> None:
        self._fn, self._error = fn, None
        self._started[0] += 1
        self._go.release()

    def wait(self) -> None:
        _poll(self._finished, self._collected)
        self._done.acquire()
        self._collected += 1
        if self._error is not None:
            raise self._error


class _Background:
    """A job started on the first worker by background(): collect() waits for it and frees the
    workers (whoever needs them first: the caller asking for its result, or the next split)."""

    def __init__(self, fn: Callable[[], Any], worker: _Worker) -> None:
        self._fn, self._worker, self._errors = fn, worker, np.geterr()
        self._collect = threading.Lock()
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            with np.errstate(**self._errors):
                self._value = self._fn()
        except BaseException as e:  # the caller's, raised when it asks for the result
            self._error = e

    def collect(self) -> None:
        global _background
        if threading.current_thread() is self._worker.thread:
            return  # the job itself splitting work: it cannot wait for itself (its split runs serially)
        with self._collect:
            if self._done:
                return
            # an interrupt (Ctrl-C) while waiting leaves the job pending, and the workers held, until
            # a later collect has seen it end: no split is handed to a worker that is still on it
            self._worker.wait()
            self._done = True
            if _background is self:
                _background = None
            _busy.release()

    def result(self) -> Any:
        self.collect()
        if self._error is not None:
            raise self._error
        return self._value


def background_worth(nbytes: int) -> bool:
    """Whether `background` may ever run a job writing `nbytes` on a worker (it also needs the workers
    polling and free at the time): BACKGROUND_MIN_BYTES or more, and more than one thread."""
    return nbytes >= BACKGROUND_MIN_BYTES and (_threads or threads()) > 1


def background(fn: Callable[[], T], nbytes: int) -> Callable[[], T]:
    """Start fn() on a worker thread while the caller goes on; returns the function that waits for
    it and gives its result (or raises its error). fn itself comes back, to run when its result is
    asked for, for a job writing fewer than BACKGROUND_MIN_BYTES (`nbytes`), with one thread, with
    the workers not polling (a busy machine, or no compiled kernels: workload 1 with a busy loop on
    the other core took 0.49 s an epoch with the gather in the background, 0.48 without), or with
    the workers in use by another thread. Any split started before the result is asked for first
    waits for the job: the workers do one thing at a time."""
    global _background
    if not background_worth(nbytes) or not polling():
        return fn
    _finish_background()
    if not _busy.acquire(blocking=False):
        return fn
    if not _workers:
        _workers.append(_Worker())
    job = _Background(fn, _workers[0])
    _background = job
    _workers[0].start(job.run)
    return job.result


def _finish_background() -> None:
    """Wait for the background job holding the workers, if there is one: the workers do one thing at a time."""
    pending = _background
    if pending is not None:
        pending.collect()


def _run_parallel(fns: list[Callable[[], None]]) -> None:
    """Run fns[0] on this thread and the others on the workers; returns when all are done."""
    global _workers
    _finish_background()
    if not _busy.acquire(blocking=False):  # another thread is using the workers: run here
        for fn in fns:
            fn()
        return
    try:
        if len(_workers) < len(fns) - 1:
            _workers += [_Worker() for _ in range(len(fns) - 1 - len(_workers))]
        for worker, fn in zip(_workers, fns[1:], strict=False):
            worker.start(fn)
        try:
            fns[0]()
        finally:  # the workers finish before anyone hands them new work, even after an error
            errors = []
            for worker in _workers[: len(fns) - 1]:
                try:
                    worker.wait()
                except BaseException as e:
                    errors.append(e)
        if errors:
            raise errors[0]
    finally:
        _busy.release()


def run_chunks(fn: Callable[[int, int], None], count: int) -> None:
    """fn(chunk, worker) for chunk in range(count), the chunks shared out over the threads.

    Each thread takes the next chunk not yet taken, so a core slowed by another process simply
    does fewer of them. `worker` (0 <= worker < threads()) lets fn keep per-thread scratch
    buffers; what fn writes must depend on `chunk` only, so results do not depend on timing.
    """
    n = min(_threads or threads(), count)
    if n <= 1:
        for chunk in range(count):
            fn(chunk, 0)
        return
    taken = iter(range(count))
    take = threading.Lock()
    errors = np.geterr()

    def loop(worker: int) -> Callable[[], None]:
        def run() -> None:
            with np.errstate(**errors):
                while True:
                    with take:
                        chunk = next(taken, None)
                    if chunk is None:
                        return
                    fn(chunk, worker)

        return run

    _run_parallel([loop(w) for w in range(n)])


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a @ b (written into `out` when given), large products split into row (or column) blocks
    computed on several cores."""
    n = _threads or threads()
    if n == 1 or a.ndim < 2 or b.ndim < 2:
        return np.matmul(a, b, out=out)
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    if M * K * N < PARALLEL_MIN_MACS and a.ndim == b.ndim == 2:  # an MLP's product: no more to decide
        return np.matmul(a, b, out=out)
    batch_shape = () if a.ndim == b.ndim == 2 else np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    if math.prod(batch_shape) * M * K * N < PARALLEL_MIN_MACS:
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty(batch_shape + (M, N), np.result_type(a, b))
    elif out.shape != batch_shape + (M, N):  # NumPy's own error for a misfit out
        return np.matmul(a, b, out=out)
    errors = np.geterr()  # NumPy's error state is per thread: the workers take the caller's
    if not batch_shape and K > M and K > N:
        return _inner_split(a, b, out, n, errors)
    rows = M >= N  # split the longer side of the output, so every block stays a good BLAS call
    size = M if rows else N
    parts = min(n, max(1, size // 16))
    bounds = _split(size, parts, math.prod(batch_shape) * M * K * N)

    def block(k: int) -> Callable[[], None]:
        s = slice(bounds[k], bounds[k + 1])

        def run() -> None:
            with np.errstate(**errors):
                if rows:
                    np.matmul(a[..., s, :], b, out=out[..., s, :])
                else:
                    np.matmul(a, b[..., s], out=out[..., s])

        return run

    _run_parallel([block(k) for k in range(parts)])
    return out


def _inner_split(a: np.ndarray, b: np.ndarray, out: np.ndarray, n: int, errors: dict[str, str]) -> np.ndarray:
    """a (M, K) @ b (K, N) with K the longest side, as a sum of products over blocks of K, one per
    thread, added in block order (so the result does not depend on which thread ran which).

    A layer's forward x @ W: each thread reads only its rows of W and its columns of x, the rows
    that its part of the weight gradient (split by rows, as x^T @ g) and of the optimizer's update
    (its half of the flat buffer) left in its core's cache; split by columns, each thread read all
    of x and half of every row of W. Measured in alternating epochs: workload 8 (64x9216 @
    9216x128) on 10,000 samples 3.30 -> 3.25 s; workload 1 (128x784 @ 784x256) 0.338 s both ways."""
    M, K, N = a.shape[0], a.shape[1], b.shape[1]
    parts = min(n, max(1, K // 16))
    bounds = _split(K, parts, M * K * N)
    partial = [out] + [np.empty((M, N), out.dtype) for _ in range(parts - 1)]

    def block(k: int) -> Callable[[], None]:
        s = slice(bounds[k], bounds[k + 1])

        def run() -> None:
            with np.errstate(**errors):
                np.matmul(a[:, s], b[s, :], out=partial[k])

        return run

    _run_parallel([block(k) for k in range(parts)])
    for p in partial[1:]:
        out += p
    return out


def _split(size: int, parts: int, macs: int) -> list[int]:
    """Bounds of `parts` blocks over range(size) of a product of `macs` multiply-adds: the first,
    the caller's, is larger by what it does while the workers wake (HANDOFF_MACS each)."""
    if parts == 1:
        return [0, size]
    head = size * (1 + (parts - 1) * HANDOFF_MACS / macs) / parts
    # whole multiples of 8 rows or columns: BLAS kernels work on such tiles (141 columns of 256
    # ran slower than 144)
    head = min(size - (parts - 1), max(1, round(head / 8) * 8))
    rest = size - head
    return [0] + [head + rest * k // (parts - 1) for k in range(parts)]
