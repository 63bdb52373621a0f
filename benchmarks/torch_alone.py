"""PyTorch alone: the PyTorch side of workloads 1-4 in a process where xnet has set nothing.

    .bench-venv/bin/python -m benchmarks.torch_alone --only 3,4 [--repeats 3]
    make bench ARGS="--torch-alone"      # alternating with xnet: each PyTorch epoch in a child

`make bench` runs both frameworks in one process, so PyTorch also runs with what xnet sets for
the whole process: glibc keeping freed memory for reuse (xnet/backends/cpu_memory.py), which
spares PyTorch's steps page faults as it spares xnet's. Its figures there are what PyTorch does
with that help. This module times PyTorch as its users run it: no xnet NumPy backend is
created, and the models start from the same weights and train on the same data as in
`make bench` (real MNIST when XNET_DATA_DIR finds it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

import numpy as np

from benchmarks import torch_side, xnet_side
from benchmarks.workloads import EPOCH_WORKLOADS, Workload, load_mnist, random_mnist
from xnet.backends import cpu_memory, get_backend


def time_workload(w: Workload, x: np.ndarray, y: np.ndarray, repeats: int) -> list[float]:
    """Seconds of `repeats` PyTorch epochs of workload w, after a warm-up on 4096 samples."""
    X, Y = torch_side.to_device(x if w.images else x.reshape(len(x), -1), y, "cpu")
    # xnet's initial weights, as in `make bench`, drawn on the strict backend: the NumPy one would
    # set the process up as xnet does. Same weights and data, so only the process differs
    ref = xnet_side.build_model(w.layers, get_backend("strict"), seed=0)
    times = []
    for r in range(-1, repeats):
        model = torch_side.build_model(w.layers, ref, "cpu")
        opt = torch_side.make_optimizer(w.optimizer, w.lr, model)
        n = 4096 if r < 0 else len(X)
        seconds = torch_side.time_epoch(model, opt, X[:n], Y[:n], w.batch, "cpu")
        times += [seconds] if r >= 0 else []
    return times


def epoch_in_child(w: Workload) -> float:
    """Seconds of one PyTorch epoch of workload w in a fresh process of its own: the second of
    two, as the first one there often takes longer while glibc's memory limits adapt (workload
    1: 0.5 to 1.1 s for a first epoch, 0.5 to 0.65 s for later ones)."""
    cmd = [sys.executable, "-m", "benchmarks.torch_alone", "--only", str(w.id), "--repeats", "2", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"benchmarks: the PyTorch-alone process failed: {(out.stderr or out.stdout).strip()}")
    return json.loads(out.stdout)[str(w.id)][-1]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.torch_alone", description=__doc__.splitlines()[0])
    p.add_argument("--only", default="1,2,3,4", help="workloads, comma-separated (default 1,2,3,4)")
    p.add_argument("--repeats", type=int, default=None, help="epochs timed per workload (default: as make bench)")
    p.add_argument("--json", action="store_true", help="print {workload: [seconds, ...]} only")
    args = p.parse_args(argv)
    why_not = torch_side.available("cpu")
    if why_not is not None:
        raise SystemExit(f"benchmarks.torch_alone: {why_not}")
    try:
        ids = {int(part) for part in args.only.split(",")}
    except ValueError:
        raise SystemExit(f"benchmarks.torch_alone: --only takes workload numbers like 3,4, got {args.only!r}") from None
    torch_side.torch.manual_seed(0)
    ds, _ = load_mnist()  # the data `make bench` uses
    x, y = (ds.train.x, ds.train.y) if ds is not None else random_mnist()
    found = {}
    if not args.json:
        print("| # | workload | PyTorch alone | repeats |\n|---|---|---:|---:|")
    for w in EPOCH_WORKLOADS:
        if w.id in ids:
            found[str(w.id)] = times = time_workload(w, x, y, args.repeats or w.repeats)
            if not args.json:
                print(f"| {w.id} | {w.name} | {statistics.median(times):.3g} s | {len(times)} |", flush=True)
    # the point of this module: nothing above asked glibc to keep freed memory
    assert not cpu_memory._done, "an xnet backend was created in the PyTorch-alone process"
    if args.json:
        print(json.dumps(found))


if __name__ == "__main__":
    main()
