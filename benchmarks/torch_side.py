"""The PyTorch side: the same models (with xnet's initial weights) in an idiomatic training loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.workloads import Layer
from xnet.interop import to_torch_state_dict

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError:  # PyTorch is an optional comparison
    torch = None


def available(device: str) -> str | None:
    """None when PyTorch can run on `device`, else why not (one line)."""
    if torch is None:
        return 'PyTorch is not installed (pip install "xnet[bench]")'
    if device == "cuda" and not torch.cuda.is_available():
        return f"PyTorch {torch.__version__} sees no CUDA GPU"
    return None


def build_model(layers: list[Layer], xnet_model: Any, device: str) -> Any:
    """An nn.Sequential from the layer list, holding a copy of `xnet_model`'s initial weights."""
    makers = {
        "dense": lambda a, b: nn.Linear(a, b),
        "conv": lambda a, b, bias=True, padding=1: nn.Conv2d(a, b, 3, padding=padding, bias=bias),
        "bn2d": nn.BatchNorm2d,
        "bn1d": nn.BatchNorm1d,
        "relu": nn.ReLU,
        "sigmoid": nn.Sigmoid,
        "maxpool": lambda: nn.MaxPool2d(2),
        "flatten": nn.Flatten,
        "dropout": nn.Dropout,
    }
    model = nn.Sequential(*[makers[kind](*args) for kind, *args in layers])
    model.load_state_dict(to_torch_state_dict(xnet_model))  # PyTorch's names and layouts (nn.Linear's transposed W)
    return model.to(device)


def make_optimizer(name: str, lr: float, model: Any) -> Any:
    """Adam (defaults: betas 0.9/0.999, eps 1e-8), Adadelta (rho 0.9, eps 1e-6) or plain SGD, as on the xnet side."""
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if name == "adadelta":
        return torch.optim.Adadelta(model.parameters(), lr=lr, rho=0.9, eps=1e-6)
    return torch.optim.SGD(model.parameters(), lr=lr)


def to_device(x: np.ndarray, y: np.ndarray, device: str) -> tuple[Any, Any]:
    """Host arrays -> float32 / int64 tensors on `device`, once."""
    return torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device), torch.from_numpy(
        y.astype(np.int64)
    ).to(device)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_epoch(
    model: Any, opt: Any, X: Any, Y: Any, batch: int, device: str,
    lr_at: Callable[[int], float] | None = None, first_step: int = 0,
) -> float:  # fmt: skip
    """Seconds for one shuffled epoch: batches indexed by a permutation, loss and accuracy
    accumulated on the device and read once at the end (what xnet's Trainer does too).

    `lr_at(step)` (an xnet schedule's) sets the learning rate before each step, counted from `first_step`.
    """
    model.train()
    n = X.shape[0]
    # xnet's Trainer skips a last batch of one sample (batch norm cannot train on it): so does this loop
    stop = n - 1 if n > 1 and n % batch == 1 else n
    _sync(device)
    t0 = time.perf_counter()
    perm = torch.randperm(n, device=device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for step, i in enumerate(range(0, stop, batch), first_step):
        if lr_at is not None:
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
        idx = perm[i : i + batch]
        xb, yb = X[idx], Y[idx]
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            loss_sum += loss.detach() * idx.shape[0]
            correct += (out.argmax(1) == yb).sum()
    float(loss_sum), int(correct)
    _sync(device)
    return time.perf_counter() - t0


def accuracy(model: Any, X: Any, Y: Any, batch: int = 1000) -> float:
    """Test accuracy in evaluation mode."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, X.shape[0], batch):
            correct += int((model(X[i : i + batch]).argmax(1) == Y[i : i + batch]).sum())
    model.train()
    return correct / X.shape[0]
