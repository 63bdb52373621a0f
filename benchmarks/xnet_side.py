"""The xnet side: models built from a layer list, trained through the real Trainer and DataLoader."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.workloads import Layer
from xnet.backends import Backend
from xnet.data.loader import DataLoader
from xnet.losses import CrossEntropy
from xnet.nn import BatchNorm1D, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential, Sigmoid
from xnet.nn.module import build_on
from xnet.optim import SGD, Adadelta, Adam
from xnet.train import Trainer
from xnet.train.progress import Reporter


def build_model(layers: list[Layer], backend: Backend, seed: int) -> Sequential:
    """A float32 Sequential on `backend` from the layer list (see workloads.py)."""
    makers = {
        "dense": lambda a, b: Dense(a, b),
        "conv": lambda a, b, bias=True, padding=1: Conv2D(a, b, 3, padding=padding, bias=bias),
        "bn2d": BatchNorm2D,
        "bn1d": BatchNorm1D,
        "relu": ReLU,
        "sigmoid": Sigmoid,
        "maxpool": lambda: MaxPool2D(2),
        "flatten": Flatten,
        "dropout": Dropout,
    }
    with build_on(backend, "float32"):
        backend.rng.seed(seed)
        return Sequential(*[makers[kind](*args) for kind, *args in layers])


def make_optimizer(name: str, lr: float, model: Sequential) -> Any:
    """Adam (PyTorch's defaults), Adadelta (rho 0.9, eps 1e-6, as PyTorch) or plain SGD."""
    if name == "adam":
        return Adam(model.parameters(), lr=lr, beta1=0.9, beta2=0.999, eps=1e-8)
    if name == "adadelta":
        return Adadelta(model.parameters(), lr=lr, rho=0.9, eps=1e-6)
    return SGD(model.parameters(), lr=lr)


def make_trainer(layers: list[Layer], optimizer: str, lr: float, backend: Backend, seed: int) -> Trainer:
    """A fresh model, loss, optimizer and silent Trainer, as `xnet train` sets them up."""
    model = build_model(layers, backend, seed)
    with build_on(backend, "float32"):
        loss = CrossEntropy()
    opt = make_optimizer(optimizer, lr, model)
    # num_classes lets the trainer check labels once instead of every step, as `xnet train` does
    return Trainer(model, loss, opt, backend=backend, seed=seed, reporter=Reporter(), meta={"num_classes": 10})


def make_loader(x: np.ndarray, y: np.ndarray, batch: int, backend: Backend, seed: int) -> DataLoader:
    """Training batches on the device (the data crosses to it once, here)."""
    return DataLoader(x, y, batch, backend, shuffle=True, seed=seed)


def time_epoch(trainer: Trainer, loader: DataLoader) -> float:
    """Seconds for one training epoch through Trainer.fit."""
    trainer.backend.synchronize()
    t0 = time.perf_counter()
    trainer.fit(loader, epochs=trainer.epoch + 1)
    trainer.backend.synchronize()
    return time.perf_counter() - t0


def accuracy(trainer: Trainer, x: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy of the trainer's model on host arrays (x, y)."""
    return float(trainer.evaluate((x, y)).accuracy)
