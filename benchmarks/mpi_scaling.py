"""Data-parallel scaling on this machine: workloads 1 and 4, one process against ranks under mpiexec.

    python -m benchmarks.mpi_scaling [--only 1,4] [--rounds 2] [--label NAME]

For each workload it times training epochs (Trainer.fit, no evaluation) in these set-ups, taking
turns round by round so that a change in the machine's load touches all of them alike:
  - one process with XNET_NUM_THREADS=2 (xnet's default on 2 cores), the reference;
  - one process with XNET_NUM_THREADS=1;
  - `mpiexec -n 2`, each rank with 1 thread (what xnet gives each rank of 2 on 2 cores).
Each set-up runs in a fresh process (or pair of ranks): one warm-up epoch, then one timed epoch
per round. The load average before and after each workload goes into the results, since other
work on the machine changes everything here. Writes benchmarks/results/mpi-scaling[-LABEL].{md,json}.
Needs mpi4py and mpiexec (pip install "xnet[mpi]"); XNET_DATA_DIR for the real MNIST.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import describe, one_line
from benchmarks.workloads import EPOCH_WORKLOADS, load_mnist, random_mnist

RESULTS = Path(__file__).parent / "results"
SETUPS = [  # (name, ranks, threads per rank)
    ("1 process, 2 threads", 1, 2),
    ("1 process, 1 thread", 1, 1),
    ("2 ranks x 1 thread", 2, 1),
]


def child(workload: int, epochs: int) -> None:
    """Under mpiexec or alone: train `epochs` epochs of the workload, rank 0 prints their seconds as JSON."""
    from benchmarks.xnet_side import make_loader, make_trainer, time_epoch
    from xnet.backends import get_backend
    from xnet.parallel.data_parallel import DataParallel
    from xnet.parallel.world import current_world

    world = current_world()
    w = next(w for w in EPOCH_WORKLOADS if w.id == workload)
    ds, _ = load_mnist()
    x, y = (ds.train.x, ds.train.y) if ds is not None else random_mnist()
    x = x.reshape(len(x), 1, 28, 28) if w.images else x.reshape(len(x), -1)
    backend = get_backend("cpu", seed=0)
    trainer = make_trainer(w.layers, w.optimizer, w.lr, backend, seed=0)
    if world is not None:
        trainer.parallel = DataParallel(world)
    loader = make_loader(x, y, w.batch, backend, seed=0)
    seconds = [time_epoch(trainer, loader) for _ in range(epochs)]
    if world is None or world.is_root:
        print(json.dumps({"seconds": seconds, "threads": backend.threads}), flush=True)


def _launch(workload: int, ranks: int, threads: int, epochs: int) -> dict[str, Any]:
    """One fresh process (or `ranks` of them under mpiexec) training the workload; its JSON line."""
    command = [sys.executable, "-m", "benchmarks.mpi_scaling", "--child", str(workload), "--epochs", str(epochs)]
    if ranks > 1:
        mpiexec = Path(sys.executable).parent / "mpiexec"
        command = [str(mpiexec) if mpiexec.is_file() else "mpiexec", "-n", str(ranks), *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "MPI_"))}
    env["XNET_NUM_THREADS"] = str(threads)
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        sys.exit(f"benchmarks: {' '.join(command)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(workload: int, rounds: int) -> dict[str, Any]:
    """Median timed epoch of each set-up over `rounds` rounds, and the load average around them."""
    times: dict[str, list[float]] = {name: [] for name, _, _ in SETUPS}
    load = [round(os.getloadavg()[0], 2)]
    for _ in range(rounds):
        for name, ranks, threads in SETUPS:
            seconds = _launch(workload, ranks, threads, epochs=2)["seconds"]
            times[name].append(seconds[-1])  # the first epoch warms the process up
    load.append(round(os.getloadavg()[0], 2))
    medians = {name: statistics.median(t) for name, t in times.items()}
    reference = medians[SETUPS[0][0]]
    return {
        "times": times,
        "median": medians,
        "speedup": {name: reference / m for name, m in medians.items()},
        "load": load,
    }


def markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    lines = [
        "# xnet data-parallel scaling (CPU)",
        "",
        f"{results['date']}; {one_line(results['machine'])}; {results['data']}.",
        f"Median epoch seconds over {results['rounds']} rounds (one warm-up epoch per process first); "
        "speed-up against one process with 2 threads. Load average: 1-minute figure before and after the workload.",
        "",
        "| # | workload | " + " | ".join(name for name, _, _ in SETUPS) + " | 2 ranks: speed-up | load |",
        "|---|---|" + "---:|" * len(SETUPS) + "---:|---|",
    ]
    for row in results["workloads"]:
        cells = " | ".join(f"{row['median'][name]:.2f}" for name, _, _ in SETUPS)
        lines.append(
            f"| {row['id']} | {row['name']} | {cells} | {row['speedup'][SETUPS[2][0]]:.2f} | "
            f"{row['load'][0]} -> {row['load'][1]} |"
        )
    if results.get("uptime"):
        lines += ["", f"`uptime` before: {results['uptime'][0]}", f"`uptime` after: {results['uptime'][1]}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="1,4", help="workloads to time, e.g. 1,4")
    parser.add_argument("--rounds", type=int, default=2, help="timed epochs per set-up (each in a fresh process)")
    parser.add_argument("--label", default="", help="suffix of the results files")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child, args.epochs)
        return
    uptime = [subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()]
    _, data = load_mnist()
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": describe("cpu", None, None),
        "data": data,
        "rounds": args.rounds,
        "workloads": [],
    }
    for w in EPOCH_WORKLOADS:
        if str(w.id) in args.only.split(","):
            print(f"[{w.id}] {w.name}", flush=True)
            row = measure(w.id, args.rounds)
            row.update(id=w.id, name=w.name)
            print("   " + ", ".join(f"{k}: {v:.2f}s" for k, v in row["median"].items()), flush=True)
            results["workloads"].append(row)
    uptime.append(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    results["uptime"] = uptime
    name = "mpi-scaling" + (f"-{args.label}" if args.label else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown(results))
    print(markdown(results), end="")


if __name__ == "__main__":
    main()
