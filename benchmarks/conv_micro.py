"""Micro-benchmark: Conv2D and MaxPool2D forward+backward, xnet (NumPy) against PyTorch CPU.

Run with the benchmark environment (torch is optional; without it xnet is timed alone):

    .bench-venv/bin/python -m benchmarks.conv_micro [--repeats 40] [--batch 64]

Each workload is one forward+backward (gradients for the input, weights and bias). xnet and
PyTorch run in alternating blocks of a few calls, so both see the same machine state; the table
gives medians per call and the ratio xnet / torch (below 1: xnet is faster). PyTorch gets as
many threads as the machine has cores, as OpenBLAS (NumPy's matrix products) does.

Other processes on the machine change the result a lot (on 2 cores, one busy core slows
PyTorch's OpenMP threads several-fold, and OpenBLAS's too): read the load average it prints.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from benchmarks.machine import openblas_kernels, torch_kernels
from xnet.nn.conv import Conv2D
from xnet.nn.module import build_on
from xnet.nn.pooling import MaxPool2D

try:
    import torch
except ImportError:  # torch is an optional comparison
    torch = None


def conv_pair(batch: int, rng: np.random.Generator) -> tuple[Callable, Callable | None, str]:
    """Conv2D 8 -> 16 channels, 3x3, padding 1 on (batch, 8, 28, 28) float32."""
    x = rng.standard_normal((batch, 8, 28, 28), dtype=np.float32)
    g = rng.standard_normal((batch, 16, 28, 28), dtype=np.float32)
    with build_on("cpu", "float32"):
        layer = Conv2D(8, 16, 3, padding=1)

    def run_xnet() -> None:
        layer.zero_grad()
        layer.forward(x)
        layer.backward(g)

    run_torch = None
    if torch is not None:
        conv = torch.nn.Conv2d(8, 16, 3, padding=1)
        xt = torch.from_numpy(x).requires_grad_()
        gt = torch.from_numpy(g)

        def run_torch() -> None:
            conv.zero_grad()
            xt.grad = None
            conv(xt).backward(gt)

    return run_xnet, run_torch, f"Conv2D 8->16 3x3 pad 1, ({batch}, 8, 28, 28)"


def pool_pair(batch: int, rng: np.random.Generator) -> tuple[Callable, Callable | None, str]:
    """MaxPool2D 2x2 on (batch, 16, 28, 28) float32."""
    x = rng.standard_normal((batch, 16, 28, 28), dtype=np.float32)
    g = rng.standard_normal((batch, 16, 14, 14), dtype=np.float32)
    with build_on("cpu", "float32"):
        layer = MaxPool2D(2)

    def run_xnet() -> None:
        layer.forward(x)
        layer.backward(g)

    run_torch = None
    if torch is not None:
        pool = torch.nn.MaxPool2d(2)
        xt = torch.from_numpy(x).requires_grad_()
        gt = torch.from_numpy(g)

        def run_torch() -> None:
            xt.grad = None
            pool(xt).backward(gt)

    return run_xnet, run_torch, f"MaxPool2D 2x2, ({batch}, 16, 28, 28)"


def time_alternating(
    a: Callable, b: Callable | None, repeats: int, inner: int
) -> tuple[float, float | None]:
    """Median milliseconds per call of a() and b(), in alternating blocks of `inner` calls.

    Each block starts with one untimed call: right after the other library ran, its idle
    worker threads still spin on the cores (OpenBLAS and OpenMP both do) and the caches hold
    its data, a switching cost that a training loop, running one library, never pays. (A
    pause between blocks would not do: on this VM the cores come back slowly from idle.)
    """
    for _ in range(3):  # warm-up: first calls allocate workspaces and start thread pools
        a()
        if b is not None:
            b()
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(repeats):
        for f, times in ((a, ta), (b, tb)):
            if f is None:
                continue
            f()  # untimed: absorbs the switch from the other library
            t0 = time.perf_counter()
            for _ in range(inner):
                f()
            times.append((time.perf_counter() - t0) / inner)
    med_a = statistics.median(ta) * 1e3
    return med_a, (statistics.median(tb) * 1e3 if tb else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="alternating blocks per library")
    parser.add_argument("--inner", type=int, default=5, help="calls per block")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    if torch is not None:
        torch.set_num_threads(cores)
    rng = np.random.default_rng(0)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"kernels: OpenBLAS {openblas_kernels()}; PyTorch {torch_kernels(torch)}")
    print(f"cores: {cores}, load average {load:.2f}, numpy {np.__version__}", end="")
    print(
        f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
        if torch
        else ", no torch"
    )
    print(
        f"forward+backward, float32; median over {args.repeats} alternating blocks of "
        f"{args.inner} calls each\n"
    )
    print("| workload | xnet ms | torch ms | xnet / torch |")
    print("|---|---:|---:|---:|")
    for make in (conv_pair, pool_pair):
        run_xnet, run_torch, label = make(args.batch, rng)
        tx, tt = time_alternating(run_xnet, run_torch, args.repeats, args.inner)
        if tt is None:
            print(f"| {label} | {tx:.2f} | - | - |")
        else:
            print(f"| {label} | {tx:.2f} | {tt:.2f} | {tx / tt:.2f} |")


if __name__ == "__main__":
    main()
