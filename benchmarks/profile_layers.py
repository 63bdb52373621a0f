"""Where a training step's time goes: forward and backward of every layer, loss and optimizer.

    .venv/bin/python -m benchmarks.profile_layers 4 [--steps 60] [--no-fuse]

Runs `steps` training steps of an epoch workload (benchmarks/workloads.py) on MNIST-shaped
random data and prints milliseconds per step for each part, largest first. Each layer is timed
by wrapping its forward and backward with perf_counter; a fused run of layers (see
xnet/nn/fused.py) counts as one part, and --no-fuse times those layers one by one. On a GPU the
backend is synchronised around each part, which itself costs time, so read GPU figures as
shares, not totals.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import xnet_side
from benchmarks.workloads import EPOCH_WORKLOADS
from xnet.backends import get_backend


def timed(fn: Callable, key: str, totals: dict[str, float], sync: Callable[[], None]) -> Callable:
    """fn wrapped so that its time is added to totals[key]."""

    def run(*args: Any) -> Any:
        sync()
        start = time.perf_counter()
        out = fn(*args)
        sync()
        totals[key] += time.perf_counter() - start
        return out

    return run


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_layers", description=__doc__.splitlines()[0])
    p.add_argument("workload", type=int, choices=[w.id for w in EPOCH_WORKLOADS])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-fuse", action="store_true", help="run fusable layers one by one")
    args = p.parse_args(argv)
    w = next(w for w in EPOCH_WORKLOADS if w.id == args.workload)
    backend = get_backend(args.device)
    trainer = xnet_side.make_trainer(w.layers, w.optimizer, w.lr, backend, 0)
    model, loss, opt = trainer.model, trainer.loss, trainer.optimizer
    model.needs_input_grad = False  # as in fit(): the first layer skips its input gradient
    totals: dict[str, float] = defaultdict(float)
    model.fuse = not args.no_fuse
    sync = backend.synchronize
    for i, step in model._plan():  # the layers, or fused steps standing for several
        size = getattr(step, "size", 1)
        name = f"{i:2d} {type(step).__name__}" if size == 1 else f"{i:2d}-{i + size - 1} {type(step).__name__}"
        step.forward = timed(step.forward, f"{name} forward", totals, sync)
        step.backward = timed(step.backward, f"{name} backward", totals, sync)
    loss.forward = timed(loss.forward, "loss forward", totals, sync)
    loss.backward = timed(loss.backward, "loss backward", totals, sync)
    opt.step = timed(opt.step, "optimizer step", totals, sync)
    opt.zero_grad = timed(opt.zero_grad, "zero_grad", totals, sync)

    rng = np.random.default_rng(0)
    shape = (w.batch, 1, 28, 28) if w.images else (w.batch, 784)
    x = backend.asarray(rng.standard_normal(shape, dtype=np.float32))
    y = backend.asarray(rng.integers(0, 10, w.batch))
    step_time = 0.0
    for step in range(args.steps + 5):
        if step == 5:  # warm-up done: buffers allocated
            totals.clear()
            step_time = 0.0
        start = time.perf_counter()
        model.train()
        opt.zero_grad()
        loss.forward(model.forward(x), y)
        model.backward(loss.backward())
        opt.step()
        sync()
        step_time += time.perf_counter() - start
    ms = {k: 1e3 * v / args.steps for k, v in totals.items()}
    print(f"workload {w.id}: {w.name}; {args.device}; ms per step over {args.steps} steps")
    print(f"{'part':<28}{'ms':>8}{'share':>8}")
    for k, v in sorted(ms.items(), key=lambda kv: -kv[1]):
        print(f"{k:<28}{v:8.3f}{v / (1e3 * step_time / args.steps):8.1%}")
    print(f"{'whole step':<28}{1e3 * step_time / args.steps:8.3f}")


if __name__ == "__main__":
    main()
