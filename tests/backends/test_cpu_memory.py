"""cpu_memory: with glibc, freed large arrays stay in the process for the next step to reuse, until released."""

from __future__ import annotations

import subprocess
import sys

import pytest

# RSS (MB) with a 64 MB array alive, then after freeing it
CHILD = """
import numpy as np
from xnet.backends import cpu_memory
print(cpu_memory.keep_freed_memory())
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
a = np.ones(16 << 20, np.float32)
alive = rss()
del a
print(alive, rss())
print(cpu_memory.release_freed_memory(), rss())  # a one-off peak handed back
"""


def _run(env_extra: dict[str, str]) -> tuple[bool, float, float, bool, float]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    out = subprocess.run([sys.executable, "-c", CHILD], env={**env, **env_extra}, capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    return out[0] == "True", float(out[1]), float(out[2]), out[3] == "True", float(out[4])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and /proc are Linux's")
def test_freed_memory_is_kept_and_user_settings_win():
    done, alive, after, released, trimmed = _run({})
    assert done and after > alive - 8  # the 64 MB stayed in the process
    assert released and trimmed < alive - 48  # until a one-off peak's memory is released
    # the user's own malloc setting: xnet changes nothing, and glibc gives the block back
    done, alive, after, released, _ = _run({"MALLOC_TRIM_THRESHOLD_": "131072"})
    assert not done and after < alive - 48 and not released
