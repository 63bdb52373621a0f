"""Array operations and host reads per training step, by part: what a GPU step pays for, counted on the CPU.

    .venv/bin/python -m benchmarks.count_ops 4 [--steps 20] [--no-fuse]

On a GPU at MNIST scale a step's cost is kernel launches and host synchronisations, not
arithmetic, and each array operation of the Array API body is at least one launch on CuPy. This
runs real training steps (Trainer.fit over a DataLoader) of an epoch workload on the strict
backend and counts, per part, every array operation xnet's code calls (an operator, a namespace
function or an array method of array-api-strict, counted once however it is implemented) and
every read of a device value on the host (`to_numpy`, `item`, `float()`, `bool()`...: each one a
GPU sync). Views (reshape, slicing, transposes) are counted apart: they launch nothing on CuPy;
so is metadata (finfo, dtype comparisons). A reshape that has to copy (merging axes of a
transposed array) is a kernel on CuPy and counts as one, "reshape (copy)". Drawing random words
counts as the one kernel it is on CuPy, and so do the CUDA backend's fused dropout and softmax
cross-entropy (cuda_nn_kernels.py) and each fused optimizer update (cuda_optim_kernels.py),
unless --no-cuda-kernels counts the reference bodies they replace.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import xnet_side
from benchmarks.workloads import EPOCH_WORKLOADS
from xnet.backends import get_backend
from xnet.losses import CrossEntropy

STRICT_DIR = os.path.dirname(__import__("array_api_strict").__file__)
# calls that make no new data on CuPy (views and metadata), counted apart from kernels
VIEWS = {
    "reshape", "permute_dims", "matrix_transpose", "expand_dims", "squeeze", "broadcast_to", "T", "mT",
    "__getitem__", "shape", "dtype", "device", "ndim", "size", "__len__", "__array_namespace__", "asarray",
    "finfo", "iinfo", "isdtype", "__init__",
}  # fmt: skip
HOST_READS = {"__float__", "__int__", "__bool__", "__index__", "__array__", "__dlpack__", "to_device"}


class Counts:
    """Operations counted per part while `part` names the part that runs."""

    def __init__(self) -> None:
        self.part = "trainer and loader"
        self.kernels: dict[str, Counter] = defaultdict(Counter)
        self.views: Counter = Counter()
        self.reads: Counter = Counter()
        self.quiet = False  # inside an operation that counts as one kernel
        self.reshapes: set[int] = set()  # ids of the frames of reshapes called from outside

    def profile(self, frame: Any, event: str, arg: Any) -> None:
        """sys.setprofile hook: a call into array-api-strict from outside it is one operation."""
        if self.quiet or not frame.f_code.co_filename.startswith(STRICT_DIR):
            return
        if event == "return" and id(frame) in self.reshapes:
            self.reshapes.discard(id(frame))
            self._check_reshape(frame.f_locals.get("x"), arg)
            return
        if event != "call":
            return
        caller = frame.f_back
        if caller is not None and caller.f_code.co_filename.startswith(STRICT_DIR):
            return  # array-api-strict calling itself: part of the same operation
        name = frame.f_code.co_name
        if name in HOST_READS:
            self.reads[self.part] += 1
        elif name in VIEWS or name.startswith("_") and not name.startswith("__"):
            self.views[self.part] += 1
            if name == "reshape":
                self.reshapes.add(id(frame))
        elif frame.f_code.co_qualname.startswith("DType."):
            self.views[self.part] += 1  # comparing or hashing dtypes: metadata, no kernel
        else:
            self.kernels[self.part][name] += 1

    def _check_reshape(self, x: Any, result: Any) -> None:
        """A reshape whose result does not share x's memory copied: a kernel, not a view."""
        inner = getattr(x, "_array", None)
        out = getattr(result, "_array", None)
        if inner is not None and out is not None and inner.size and not np.shares_memory(inner, out):
            self.views[self.part] -= 1
            self.kernels[self.part]["reshape (copy)"] += 1

    def wrap(self, fn: Callable, part: str) -> Callable:
        """fn, with its operations counted under `part`."""

        def run(*args: Any, **kwargs: Any) -> Any:
            outer, self.part = self.part, part
            try:
                return fn(*args, **kwargs)
            finally:
                self.part = outer

        return run

    def one_kernel(self, fn: Callable, name: str) -> Callable:
        """fn counted as the one kernel it is on CuPy (the strict backend runs a reference body of many)."""

        def run(*args: Any, **kwargs: Any) -> Any:
            if not self.quiet:  # inside another one-kernel operation it is part of that one
                self.kernels[self.part][name] += 1
            outer, self.quiet = self.quiet, True
            try:
                return fn(*args, **kwargs)
            finally:
                self.quiet = outer

        return run


class FusedAsOnCuda:
    """The CUDA backend's fused kernels on the strict backend: the reference computes, one launch is counted."""

    def __init__(self, backend: Any, counts: Counts, optimizer: Any):
        self.backend, self.busy = backend, False
        backend.fused_dropout = counts.one_kernel(self.dropout, "fused_dropout")
        backend.fused_softmax_cross_entropy = counts.one_kernel(self.softmax_cross_entropy, "fused_softmax_ce")
        # on CUDA an optimizer's backend fast path (CupyBackend.adam_update...) is one launch per part
        # of a group (a flat buffer, or its two slices when weight decay leaves the biases out): count
        # the parts, not the body
        update_group = optimizer._update_group

        def fused_update(group: dict[str, Any], params: list[Any], states: list[Any]) -> None:
            for _ in params:
                counts.one_kernel(lambda: None, "fused_optimizer_update")()
            outer, counts.quiet = counts.quiet, True
            try:
                update_group(group, params, states)
            finally:
                counts.quiet = outer

        optimizer._update_group = fused_update

    def dropout(self, x: Any, stream: Any, keep: float, scale: float) -> tuple[Any, Any]:
        mask = stream.bernoulli(tuple(x.shape), keep, x.dtype)
        mask *= scale
        return x * mask, mask

    def softmax_cross_entropy(self, z: Any, target: Any, smoothing: float, scale: float) -> tuple[Any, Any] | None:
        if self.busy:  # the reference loss below asks for the fused path too: give it the body
            return None
        self.busy = True
        try:
            loss = CrossEntropy(smoothing, "none").to(self.backend)
            loss.check_labels = False  # the counted loss checked them
            terms = loss.forward(z, target)
            return terms, loss._grad * scale
        finally:
            self.busy = False


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.count_ops", description=__doc__.splitlines()[0])
    p.add_argument("workload", type=int, choices=[w.id for w in EPOCH_WORKLOADS])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--no-fuse", action="store_true", help="run fusable layers one by one")
    p.add_argument("--detail", action="store_true", help="list the operations of each part")
    p.add_argument(
        "--no-cuda-kernels", action="store_true", help="count the reference bodies of the CUDA backend's fused kernels"
    )
    args = p.parse_args(argv)
    w = next(w for w in EPOCH_WORKLOADS if w.id == args.workload)
    backend = get_backend("strict")
    trainer = xnet_side.make_trainer(w.layers, w.optimizer, w.lr, backend, 0)
    model, loss, opt = trainer.model, trainer.loss, trainer.optimizer
    model.fuse = not args.no_fuse
    counts = Counts()
    for i, step in model._plan():  # the layers, or fused steps standing for several
        size = getattr(step, "size", 1)
        name = f"{i:2d} {type(step).__name__}" if size == 1 else f"{i:2d}-{i + size - 1} {type(step).__name__}"
        step.forward = counts.wrap(step.forward, f"{name} forward")
        step.backward = counts.wrap(step.backward, f"{name} backward")
    loss.forward = counts.wrap(loss.forward, "loss forward")
    loss.backward = counts.wrap(loss.backward, "loss backward")
    opt.step = counts.wrap(opt.step, "optimizer step")
    opt.zero_grad = counts.wrap(opt.zero_grad, "zero_grad")
    backend.to_numpy = counts.wrap(backend.to_numpy, "host reads (to_numpy, item)")
    # the CUDA backend draws a Philox stream's words with one kernel (cuda_philox.py)
    backend.random_words = counts.one_kernel(backend.random_words, "random_words")
    if not args.no_cuda_kernels:
        FusedAsOnCuda(backend, counts, opt)

    rng = np.random.default_rng(0)
    n = w.batch * args.steps
    shape = (n, 1, 28, 28) if w.images else (n, 784)
    data = (rng.random(shape, dtype=np.float32), rng.integers(0, 10, n))
    loader = xnet_side.make_loader(*data, w.batch, backend, seed=0)
    trainer.fit(loader, epochs=1)  # warm-up epoch: first-use checks and buffers
    counts.kernels.clear()  # one-kernel operations count whenever they run: keep the measured epoch's only
    sys.setprofile(counts.profile)
    try:
        trainer.fit(loader, epochs=2)
    finally:
        sys.setprofile(None)

    steps = args.steps
    print(f"workload {w.id}: {w.name}; array operations per training step on the strict backend "
          f"(one epoch of {steps} steps, with its end-of-epoch bookkeeping; "
          f"{'reference bodies' if args.no_cuda_kernels else 'CUDA fused kernels as one launch each'})")
    print(f"{'part':<34}{'kernels':>8}{'views':>7}{'reads':>7}")
    parts = sorted(set(counts.kernels) | set(counts.views) | set(counts.reads),
                   key=lambda k: -sum(counts.kernels[k].values()))
    for part in parts:
        k = sum(counts.kernels[part].values())
        print(f"{part:<34}{k / steps:8.1f}{counts.views[part] / steps:7.1f}{counts.reads[part] / steps:7.2f}")
        if args.detail and k:
            top = ", ".join(f"{op} {c / steps:g}" for op, c in counts.kernels[part].most_common())
            print(f"    {top}")
    total_k = sum(sum(c.values()) for c in counts.kernels.values())
    print(f"{'whole step':<34}{total_k / steps:8.1f}{sum(counts.views.values()) / steps:7.1f}"
          f"{sum(counts.reads.values()) / steps:7.2f}")


if __name__ == "__main__":
    main()
