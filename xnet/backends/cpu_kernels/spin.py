"""A wait that keeps its core for a while: poll a counter, yielding the CPU between looks, then sleep.

xnet's worker threads (cpu_threads.py) sleep on a lock between hand-offs, and the thread that
handed work off sleeps on another until it is done. Waking a sleeping thread is the kernel's job,
and on a core that has gone idle it is slow: inside workload 3's step, where the other core idles
between the two convolutions it shares, a worker started a median 150 us after its hand-off (2-core
Intel Xeon VM; 15 us where the hand-offs come close together, as in workload 4). Polling a counter
first sees the hand-off at once; the thread then still waits for the GIL, which the other thread
releases inside its own compiled kernel or BLAS call, so a round trip with an empty job still
takes ~30 us, but the core is awake. Workload 3's step went from 3.57-3.60 to 3.10-3.16 ms. Between
looks the thread calls sched_yield, so any other runnable process on that core goes first, and a
look that comes back late (the core ran someone else) stops the polling (cpu_threads._poll):
unlike the spinning of OpenBLAS's and OpenMP's threads, which waits for a thread that lost its core.

The loop runs compiled and without the GIL: a Python loop would take the GIL from the thread doing
the work at every look. sched_yield is called through an LLVM declaration (an intrinsic), not
ctypes, so that Numba can cache the loop on disk; where the C library has no sched_yield (Windows)
the loop fails to compile and threads simply sleep, as they do with the kernels off.
"""

from __future__ import annotations

import time

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from xnet.backends.cpu_kernels.flags import plain


@intrinsic
def _sched_yield(typingctx):  # type: ignore[no-untyped-def]
    """sched_yield() from the C library: gives the core to another runnable thread, if there is one."""

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield")
        return builder.call(fn, [])

    return types.int32(), codegen


# machines whose cycle counter user code may read (rdtsc). On 64-bit ARM, LLVM reads PMCCNTR_EL0,
# which Linux and macOS do not let a user process read: the instruction would kill the process,
# so there the threads do not poll at all (cpu_kernels/table.use_spin_wait)
CYCLE_COUNTER_MACHINES = ("x86_64", "amd64", "i386", "i686", "x86")


@intrinsic
def _cycles(typingctx):  # type: ignore[no-untyped-def]
    """The CPU's cycle counter: rdtsc on x86 (only used there, see CYCLE_COUNTER_MACHINES)."""

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        counter = ir.FunctionType(ir.IntType(64), [])
        return builder.call(cgutils.get_or_insert_function(builder.module, counter, "llvm.readcyclecounter"), [])

    return types.int64(), codegen


@plain
def wait_for(counter, seen, looks, late):
    """1 when counter[0] (int64) differs from `seen` within `looks` looks, one sched_yield apart; 0
    when it does not; -1 as soon as one sched_yield took more than `late` cycles: the core went to
    another runnable thread, so it is wanted, and the caller should sleep instead (on a 2-core VM
    with a busy loop beside it, polling without this check made workload 3's epoch 40-60% slower).

    The call to the C library between looks also makes every look a fresh load from memory: the
    compiler cannot keep counter[0] in a register across a call that might have written it."""
    last = _cycles()
    for _ in range(looks):
        if counter[0] != seen:
            return 1
        _sched_yield()
        now = _cycles()
        if now - last > late:
            return -1
        last = now
    return 1 if counter[0] != seen else 0


@plain
def finish_then_wait_for(finished, counter, seen, looks, late):
    """finished[0] += 1, then wait_for(counter, seen, looks, late): what a worker does after a job.

    The count that the waiting caller polls goes up only here, where this thread no longer holds
    the GIL (a compiled function without it), so that caller can take the GIL at once; raised from
    Python, it let the caller go while this thread still held the GIL for a few more statements,
    and a thread that finds the GIL taken sleeps until it comes back. Alternating epochs against
    raising it from Python: workload 3 on 20,000 samples 0.921 -> 0.899 s, workload 1 0.360 -> 0.356 s."""
    finished[0] += 1
    return wait_for(counter, seen, looks, late)


def calibrate() -> tuple[float, float]:
    """(seconds per look, cycles per second) here, over 2,000 looks (about 0.15 us each on a 2-core
    VM); compiles wait_for (or loads it from the cache) first."""
    counter, never = np.zeros(1, np.int64), 1 << 62
    wait_for(counter, 0, 1, never)  # both compiled (or loaded) before the clock starts
    _read_cycles()
    start, cycles = time.perf_counter(), _read_cycles()
    wait_for(counter, 0, 2000, never)
    seconds = max(1e-9, time.perf_counter() - start)
    return seconds / 2000, (_read_cycles() - cycles) / seconds


@plain
def _read_cycles():
    return _cycles()
