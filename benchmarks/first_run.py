"""What the compiled CPU kernels cost a run: `xnet train` (the default MLP) without them, with an
empty Numba cache (a fresh machine: every kernel the run calls is compiled) and with a warm one.

    PYTHONPATH=. python -m benchmarks.first_run --repeats 3 [-- extra xnet train options]

Each run is a fresh process; the three modes alternate (off, cold, warm, off, ...) against machine
drift. Prints the median wall time and the median CPU time (user + system of the child, which
load from other processes disturbs far less than wall time) per mode, and the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `xnet train` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "xnet", "train", *args], env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", default="1")
    parser.add_argument("extra", nargs="*", help="more `xnet train` options")
    opts = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"off": [], "cold": [], "warm": []}
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        warm_cache = os.path.join(tmp, "warm-cache")
        base = {**os.environ, "XNET_CPU_KERNELS": "1"}
        args = ["--epochs", opts.epochs, *opts.extra]
        _run([*args, "--out", os.path.join(tmp, "w")], {**base, "NUMBA_CACHE_DIR": warm_cache})  # fills it
        for r in range(opts.repeats):
            for mode in results:
                env = dict(base)
                if mode == "off":
                    env["XNET_CPU_KERNELS"] = "0"
                else:
                    env["NUMBA_CACHE_DIR"] = warm_cache if mode == "warm" else os.path.join(tmp, f"cold-{r}")
                loads.append(os.getloadavg()[0])
                results[mode].append(_run([*args, "--out", os.path.join(tmp, f"{mode}-{r}")], env))
    print(f"xnet train {' '.join(args)}: {opts.repeats} runs per mode, load average {min(loads):.1f}-{max(loads):.1f}")
    for mode, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"  {mode:5s} wall {wall:6.2f} s   cpu {cpu:6.2f} s   (walls {', '.join(f'{w:.1f}' for w, _ in runs)})")


if __name__ == "__main__":
    main()
