"""The cross-device tests' common run: a small BN + dropout CNN trained on augmented, shuffled batches,
recorded step by step (what each step drew and computed), so backends can be compared draw by draw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xnet.backends import Backend
from xnet.data import Augment, DataLoader
from xnet.losses import CrossEntropy
from xnet.models import build_cnn
from xnet.nn import Dropout, Module, build_on
from xnet.optim import Adam

SEED = 5


def images(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n random 12x12 one-channel images (N, 1, 12, 12) and labels 0-3 (N,), the same on every call."""
    rng = np.random.default_rng(0)
    return rng.random((n, 1, 12, 12)).astype(np.float32), rng.integers(0, 4, n)


@dataclass
class CnnRun:
    """The model, loss, optimizer, dropout layer and loader of one run on one backend."""

    backend: Backend
    model: Module
    loss: CrossEntropy
    opt: Adam
    dropout: Dropout
    loader: DataLoader


def cnn_run(backend: Backend, dtype: str, n: int, batch: int) -> CnnRun:
    """The run on `backend` (seeded by the caller) over images(n) in batches of `batch`."""
    with build_on(backend, dtype):
        model = build_cnn((1, 12, 12), 4, channels=(3, 4), dense=8, dropout=0.3, batch_norm=True)
        loss = CrossEntropy()
    dropout = next(m for m in model.modules() if isinstance(m, Dropout))
    loader = DataLoader(*images(n), batch, backend, seed=SEED, augment=Augment(2, 15), dtype=dtype)
    return CnnRun(backend, model, loss, Adam(model.parameters(), lr=0.01), dropout, loader)


def record_epoch(run: CnnRun, epoch: int, seen: dict[str, list[Any]], launches: list[str] | None = None) -> None:
    """Train one epoch as the Trainer does, appending to seen's "order", "batch", "mask" and "loss" lists
    (and to "launched" the names each step appended to `launches`, a fake GPU's launch log)."""
    backend, to_np = run.backend, run.backend.to_numpy
    backend.rng.seed(SEED, epoch)  # as the Trainer does at each epoch's start
    run.loader.set_epoch(epoch)
    seen["order"].append(to_np(run.loader.permutation(epoch)))
    for xb, yb in run.loader:
        before = len(launches) if launches is not None else 0
        value = run.loss.forward(run.model.forward(xb), yb)
        run.opt.zero_grad()
        run.model.backward(run.loss.backward())
        run.opt.step()
        if launches is not None:
            seen["launched"].append(launches[before:])
        seen["batch"].append(to_np(xb).copy())
        seen["mask"].append(to_np(run.dropout._mask).copy())
        seen["loss"].append(np.array(backend.item(value)))
