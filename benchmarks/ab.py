"""Before/after: the xnet side of workloads 1-4 at two versions of xnet, alternating, medians.

    .bench-venv/bin/python -m benchmarks.ab HEAD~1 HEAD --only 1,2 --repeats 5
    .bench-venv/bin/python -m benchmarks.ab HEAD . --only 3        # '.' = the working tree

Each version's xnet/ is exported (git archive) to a temporary folder; every measurement is a
fresh process importing that copy, timed with this checkout's harness (xnet_side.py), so both
versions run the same benchmark code. Runs alternate A, B, B, A, ... against machine drift.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.workloads import EPOCH_WORKLOADS

ROOT = Path(__file__).resolve().parent.parent

# One epoch (after a warm-up on 4096 samples) in a fresh process; prints seconds as JSON.
CHILD = """
import json, sys
import numpy as np
from benchmarks import workloads, xnet_side
from benchmarks.workloads import load_mnist, random_mnist
from xnet.backends import get_backend
w = next(w for w in workloads.EPOCH_WORKLOADS if w.id == int(sys.argv[1]))
ds, _ = load_mnist()
x, y = (ds.train.x, ds.train.y) if ds is not None else random_mnist()
x = x if w.images else x.reshape(len(x), -1)
b = get_backend("cpu")
xnet_side.time_epoch(xnet_side.make_trainer(w.layers, w.optimizer, w.lr, b, 0),
                     xnet_side.make_loader(x[:4096], y[:4096], w.batch, b, 0))
t = xnet_side.time_epoch(xnet_side.make_trainer(w.layers, w.optimizer, w.lr, b, 0),
                         xnet_side.make_loader(x, y, w.batch, b, 0))
print(json.dumps(t))
"""


def export(rev: str, dest: Path) -> Path:
    """xnet/ at git revision `rev` ('.' = the working tree) copied under dest; returns dest."""
    dest.mkdir(parents=True)
    if rev == ".":
        shutil.copytree(ROOT / "xnet", dest / "xnet", ignore=shutil.ignore_patterns("__pycache__"))
    else:
        archive = subprocess.run(["git", "archive", rev, "xnet"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def time_once(src: Path, harness: Path, workload: int) -> float:
    env = {"PYTHONPATH": f"{src}:{harness}", "PATH": "/usr/bin:/bin"}
    # the machine's BLAS settings (thread counts, OPENBLAS_CORETYPE) apply to both versions
    passed = ("XNET_DATA_DIR", "XNET_NUM_THREADS", "XNET_CPU_KERNELS", "HOME", "OMP_NUM_THREADS")
    for key, value in os.environ.items():
        if key in passed or key.startswith("OPENBLAS_"):
            env[key] = value
    out = subprocess.run([sys.executable, "-c", CHILD, str(workload)], cwd=harness, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"benchmarks.ab: workload {workload} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ab", description=__doc__.splitlines()[0])
    p.add_argument("a", help="git revision before (or '.')")
    p.add_argument("b", help="git revision after (or '.')")
    p.add_argument("--only", default="1,2,3,4")
    p.add_argument("--repeats", type=int, default=4)
    args = p.parse_args(argv)
    ids = [int(s) for s in args.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="xnet-ab-") as tmp:
        srcs = [export(args.a, Path(tmp) / "a"), export(args.b, Path(tmp) / "b")]
        harness = Path(tmp) / "harness"
        shutil.copytree(ROOT / "benchmarks", harness / "benchmarks",
                        ignore=shutil.ignore_patterns("__pycache__", "results"))
        rows = []
        for wid in ids:
            times: list[list[float]] = [[], []]
            for r in range(args.repeats):
                for side in ((0, 1) if r % 2 == 0 else (1, 0)):
                    times[side].append(time_once(srcs[side], harness, wid))
            ma, mb = statistics.median(times[0]), statistics.median(times[1])
            name = next(w.name for w in EPOCH_WORKLOADS if w.id == wid)
            rows.append(f"| {wid} | {name} | {ma:.2f} | {mb:.2f} | {mb / ma:.2f} |")
            print(f"[{wid}] {args.a}: {[round(t, 2) for t in times[0]]}  {args.b}: {[round(t, 2) for t in times[1]]}",
                  flush=True)
    print(f"\n| # | workload | {args.a} s | {args.b} s | after / before |\n|---|---|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
