"""Workload 2's training step written out by hand: the floor under xnet's own Python.

    XNET_DATA_DIR=../shared/data .venv/bin/python -m benchmarks.flat_step [--epochs 3]

Workload 2 (MLP 784-128-64-64-10 sigmoid, softmax cross-entropy, SGD 0.02, batch 16) is a few
dozen small operations a step. This trains it with the very calls xnet's fast paths end in
(NumPy's matmul and in-place ufuncs, the compiled cross-entropy, activation-gradient and SGD
kernels), in the same order and from the same weights and batches, with no Trainer, Sequential,
layer, loss, optimizer or backend around them; then the same epoch through the Trainer, as the
benchmark runs it, alternating. The weights agree bit for bit after every epoch
(tests/benchmarks/test_flat_step.py checks a few steps), so the time between the two is what
xnet's Python structure costs a step. NumPy backend, compiled kernels on.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from benchmarks import xnet_side
from benchmarks.workloads import EPOCH_WORKLOADS
from xnet.backends import get_backend
from xnet.backends.cpu_kernels import loader as kernel_loader
from xnet.backends.cpu_kernels import optim, rows

WORKLOAD = 2


def _sigmoid(z: np.ndarray) -> None:
    """Sigmoid in place, as the fused Dense -> Sigmoid step computes it: 0.5 * (1 + tanh(0.5 z))."""
    np.multiply(z, 0.5, out=z)
    np.tanh(z, out=z)
    np.add(z, 1.0, out=z)
    np.multiply(z, 0.5, out=z)


class FlatMLP:
    """The trainer's Dense/Sigmoid MLP as plain arrays: one flat float32 buffer of weights and biases
    (and one of their gradients) in the model's parameter order, updated by one SGD kernel call."""

    def __init__(self, params: list[np.ndarray], lr: float):
        sizes = [p.size for p in params]
        self.flat, self.grads = np.empty(sum(sizes), np.float32), np.zeros(sum(sizes), np.float32)
        self.weights, self.biases, self.dweights, self.dbiases = [], [], [], []
        at = 0
        for p in params:  # weight, bias, weight, bias, ...
            view, grad = self.flat[at : at + p.size].reshape(p.shape), self.grads[at : at + p.size].reshape(p.shape)
            view[...] = p
            (self.weights if p.ndim == 2 else self.biases).append(view)
            (self.dweights if p.ndim == 2 else self.dbiases).append(grad)
            at += p.size
        self.lr, self.one, self.zero = np.float32(lr), np.float32(1), np.float32(0)

    def step(self, x: np.ndarray, y: np.ndarray) -> Any:
        """One training step on a batch (x (N, 784) float32, y (N,) int64); returns the mean loss."""
        hs, h = [x], x
        last = len(self.weights) - 1
        for i in range(last):
            z = np.matmul(h, self.weights[i])
            z += self.biases[i]
            _sigmoid(z)
            hs.append(z)
            h = z
        z = np.matmul(h, self.weights[last])
        z += self.biases[last]
        n = z.shape[0]
        terms, g = np.empty((n,), np.float32), np.empty_like(z)
        scale = np.float32(1.0 / n)
        rows.ce_labels(z, y, self.one, self.zero, scale, terms, g, 0, n)
        loss = np.sum(terms) * (1.0 / n)
        np.matmul(hs[last].T, g, out=self.dweights[last])
        self.dbiases[last][...] = np.sum(g, axis=0)
        gh = np.matmul(g, self.weights[last].T)
        for i in range(last - 1, -1, -1):
            gz, sums = np.empty_like(gh), np.empty((gh.shape[1],), np.float32)
            rows.activation_grad(gh, hs[i + 1], 1, self.one, gz, sums, 0, n)  # 1: sigmoid
            np.matmul(hs[i].T, gz, out=self.dweights[i])
            self.dbiases[i][...] = sums
            if i:
                gh = np.matmul(gz, self.weights[i].T)
        optim.OPTIMIZERS["sgd"](self.lr, self.zero, 0, self.flat, self.grads)
        return loss


def flat_epoch(net: FlatMLP, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch: int) -> None:
    """One epoch of FlatMLP steps over the samples in `order` (N,), `batch` at a time, the last one short."""
    for i in range(0, len(order), batch):
        rows_ = order[i : i + batch]
        net.step(x.take(rows_, axis=0), y.take(rows_))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each, alternating (default 3)")
    args = parser.parse_args()
    if kernel_loader.kernels() is None:
        raise SystemExit(f"flat_step: the compiled kernels are off here ({kernel_loader.reason()})")
    from xnet.data import load_dataset

    w = {wl.id: wl for wl in EPOCH_WORKLOADS}[WORKLOAD]
    backend = get_backend("cpu")
    ds = load_dataset("mnist")
    x, y = ds.train.x.reshape(len(ds.train.y), -1).astype(np.float32), ds.train.y.astype(np.int64)
    trainer = xnet_side.make_trainer(w.layers, w.optimizer, w.lr, backend, 0)
    loader = xnet_side.make_loader(x, y, w.batch, backend, 0)
    net = FlatMLP([p.data.copy() for p in trainer.model.parameters()], w.lr)
    times: dict[str, list[float]] = {"flat": [], "xnet": []}
    for epoch in range(args.epochs):
        order = loader.permutation(trainer.epoch + 1)  # the trainer's next epoch (counted from 1)
        start = time.perf_counter()
        flat_epoch(net, x, y, order, w.batch)
        times["flat"].append(time.perf_counter() - start)
        times["xnet"].append(xnet_side.time_epoch(trainer, loader))  # the trainer's epoch `epoch`, same order
        same = all(np.array_equal(p.data, q) for p, q in zip(trainer.model.parameters(), _params(net), strict=True))
        print(f"epoch {epoch}: flat {times['flat'][-1]:.3f} s, xnet {times['xnet'][-1]:.3f} s, "
              f"weights {'equal' if same else 'DIFFER'}")  # fmt: skip
    steps = len(loader)
    flat, xnet = (float(np.median(times[k])) / steps * 1e6 for k in ("flat", "xnet"))
    print(f"per step (median): flat {flat:.1f} us, xnet {xnet:.1f} us; xnet's own Python {xnet - flat:.1f} us")


def _params(net: FlatMLP) -> list[np.ndarray]:
    """The flat net's arrays in the model's parameter order (weight, bias, ...)."""
    return [a for pair in zip(net.weights, net.biases, strict=True) for a in pair]


if __name__ == "__main__":
    main()
