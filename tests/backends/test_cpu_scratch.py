"""The compiled kernels' reused work arrays (cpu_kernels/scratch.py): one set per thread."""

from __future__ import annotations

import threading

import numpy as np

from xnet.backends.cpu_kernels import scratch


def test_a_thread_gets_its_array_back_and_it_grows_when_asked_for_more():
    a = scratch.array("test grows", (3, 4), np.float32)
    assert a.shape == (3, 4) and a.dtype == np.float32 and a.flags.c_contiguous
    a[...] = 7
    b = scratch.array("test grows", (2, 5), np.float32)  # 10 values fit in the 12 held
    assert np.shares_memory(a, b) and b.shape == (2, 5)
    c = scratch.array("test grows", (5, 5), np.float32)  # 25 do not: a new, larger array
    assert not np.shares_memory(a, c) and c.shape == (5, 5)
    assert np.shares_memory(scratch.array("test grows", (4,), np.float32), c)
    assert not np.shares_memory(scratch.array("test grows", (4,), np.float64), c)  # per dtype
    assert not np.shares_memory(scratch.array("test other", (4,), np.float32), c)  # per name


def test_threads_never_share_an_array():
    mine = scratch.array("test threads", (100,), np.float64)
    theirs: list[np.ndarray] = []
    thread = threading.Thread(target=lambda: theirs.append(scratch.array("test threads", (100,), np.float64)))
    thread.start()
    thread.join()
    assert not np.shares_memory(mine, theirs[0])
