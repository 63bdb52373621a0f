"""Keep freed memory in the process, so each training step does not page-fault its arrays back in.

glibc's malloc hands large blocks (from 128 KiB, a limit it raises as it sees bigger ones, up to
32 MiB) straight to and from the OS with mmap/munmap, and returns the top of its heap when it
is free. A training step frees the same large temporaries it allocates next step, so every
step asked the kernel for fresh pages and paid a page fault per 4 KiB on first touch: in a
BN-CNN step (batch 128, 12.8 MB activations) the first Conv2D's forward took 6.3 ms instead of
1.6 ms, and the whole step 63 ms instead of 55 ms. Raising both limits keeps the memory for
reuse; peak memory is unchanged, the process just does not shrink after its peak.

The one exception is a one-off peak such as reading a dataset (the file's bytes and the
conversion chunks, 60 MB for MNIST): `release_freed_memory` hands those pages back once the
arrays are built, so the run does not carry them (and Numba and matplotlib on top of them).

Only glibc has mallopt; elsewhere (musl, macOS, Windows) this does nothing. A limit the user set
through glibc's own environment variables is left alone.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
KEEP_BYTES = 1 << 30  # blocks up to 1 GiB come from (and go back to) the heap

_done = False
_trim: Any = None  # glibc's malloc_trim, once the policy above is in force


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks for reuse; True when it was done (once per process)."""
    global _done, _trim
    if _done:
        return True
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library the interpreter runs on
        mallopt, trim = libc.mallopt, libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return False
    _done = bool(mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, 2 * KEEP_BYTES))
    if _done:
        _trim = trim
    return _done


def release_freed_memory() -> bool:
    """Give the heap's free pages back to the OS after a one-off peak; True when glibc did (kept memory only)."""
    return _trim is not None and bool(_trim(0))
