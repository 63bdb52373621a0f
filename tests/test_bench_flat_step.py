"""benchmarks/flat_step: workload 2's step written out by hand does exactly the Trainer's work."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import flat_step, xnet_side
from benchmarks.workloads import EPOCH_WORKLOADS
from xnet.backends import get_backend
from xnet.backends.cpu_kernels import loader as kernel_loader


def test_the_flat_step_learns_the_trainers_weights_bit_for_bit():
    if kernel_loader.kernels() is None:
        pytest.skip(f"compiled kernels off: {kernel_loader.reason()}")
    w = {wl.id: wl for wl in EPOCH_WORKLOADS}[flat_step.WORKLOAD]
    rng = np.random.default_rng(2)
    n = 30 * w.batch + 5  # 30 full batches and a short last one
    x, y = rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)
    backend = get_backend("cpu")
    trainer = xnet_side.make_trainer(w.layers, w.optimizer, w.lr, backend, 0)
    loader = xnet_side.make_loader(x, y, w.batch, backend, 0)
    start = [p.data.copy() for p in trainer.model.parameters()]
    net = flat_step.FlatMLP(start, w.lr)
    for _ in range(2):
        flat_step.flat_epoch(net, x, y.astype(np.int64), loader.permutation(trainer.epoch + 1), w.batch)
        xnet_side.time_epoch(trainer, loader)
        for p, q in zip(trainer.model.parameters(), flat_step._params(net), strict=True):
            np.testing.assert_array_equal(q, p.data)
    assert not np.array_equal(start[0], flat_step._params(net)[0])  # it trained
