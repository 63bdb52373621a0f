"""Each new layer against PyTorch in float64: forward output, input gradient and parameter gradients.

Run with a Python that has PyTorch (CPU is enough), from the repository root:

    PYTHONPATH=. /path/to/python benchmarks/layer_parity.py [--out benchmarks/results/layer_parity.md]

Both sides get the same input, the same upstream gradient and the same weights. The error of a
quantity is max |xnet - torch| / max |torch| (relative to the largest value, so that entries near
zero do not inflate it); the target is <= 1e-6. Exit 1 when a layer misses it.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn as tnn

import xnet
from xnet import nn
from xnet.atomic import atomic_write_text
from xnet.backends import get_backend

TARGET = 1e-6
RNG = np.random.default_rng(0)


def _t(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.array(a), dtype=torch.float64, requires_grad=grad)


def _error(ours: np.ndarray, theirs: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(theirs))), 1e-300)
    return float(np.max(np.abs(np.asarray(ours) - theirs))) / scale


def compare(layer: Any, module: Any, shape: tuple[int, ...], params: dict[str, Callable], scale: float = 3.0) -> dict:
    """Errors of forward, dx and every parameter gradient; `params` maps xnet names to torch tensors' getters."""
    x = RNG.standard_normal(shape) * scale
    y = layer.forward(x)
    g = RNG.standard_normal(y.shape)
    layer.zero_grad()
    dx = layer.backward(g)
    tx = _t(x, grad=True)
    ty = module(tx)
    ty.backward(_t(g))
    errors = {"forward": _error(y, ty.detach().numpy()), "input grad": _error(dx, tx.grad.numpy())}
    grads = dict(layer.named_parameters())
    for name, get in params.items():
        theirs = get().grad.numpy()
        ours = grads[name].grad
        errors[f"d {name}"] = _error(ours.T if ours.ndim == 2 and ours.shape != theirs.shape else ours, theirs)
    return errors


def _copy(dst: torch.Tensor, src: np.ndarray) -> None:
    with torch.no_grad():
        dst.copy_(_t(src))


def cases() -> list[tuple[str, Callable[[], dict]]]:
    """(description, run) for every layer and setting compared."""
    out: list[tuple[str, Callable[[], dict]]] = []
    elementwise = [
        ("GELU()", lambda: nn.GELU(), lambda: tnn.GELU()),
        ('GELU(approximate="tanh")', lambda: nn.GELU("tanh"), lambda: tnn.GELU(approximate="tanh")),
        ("SiLU()", lambda: nn.SiLU(), lambda: tnn.SiLU()),
        ("ELU(alpha=1.0)", lambda: nn.ELU(), lambda: tnn.ELU()),
        ("ELU(alpha=0.3)", lambda: nn.ELU(0.3), lambda: tnn.ELU(alpha=0.3)),
        ("Softplus()", lambda: nn.Softplus(), lambda: tnn.Softplus()),
        ("Softplus(beta=2, threshold=5)", lambda: nn.Softplus(2.0, 5.0), lambda: tnn.Softplus(beta=2.0, threshold=5.0)),
    ]
    for text, ours, theirs in elementwise:
        out.append((text + ", x ~ 3 N(0,1)", lambda o=ours, t=theirs: compare(o(), t(), (8, 3, 5, 5), {})))
        out.append((text + ", x ~ 12 N(0,1) (tails)", lambda o=ours, t=theirs: compare(o(), t(), (64, 50), {}, 12.0)))

    def layernorm(shape: tuple[int, ...], affine: bool) -> dict:
        ours = nn.LayerNorm(shape, elementwise_affine=affine)
        theirs = tnn.LayerNorm(shape, elementwise_affine=affine, dtype=torch.float64)
        params: dict[str, Callable] = {}
        if affine:
            w, b = RNG.standard_normal(shape) + 1, RNG.standard_normal(shape)
            ours.weight.data[...], ours.bias.data[...] = w, b
            _copy(theirs.weight, w), _copy(theirs.bias, b)
            params = {"weight": lambda: theirs.weight, "bias": lambda: theirs.bias}
        return compare(ours, theirs, (4, 3, *shape), params)

    out.append(("LayerNorm(10)", lambda: layernorm((10,), True)))
    out.append(("LayerNorm((4, 5))", lambda: layernorm((4, 5), True)))
    out.append(("LayerNorm(10, elementwise_affine=False)", lambda: layernorm((10,), False)))
    out.append(("GlobalAvgPool2D() vs AdaptiveAvgPool2d(1) + flatten",
                lambda: compare(nn.GlobalAvgPool2D(), tnn.Sequential(tnn.AdaptiveAvgPool2d(1), tnn.Flatten()),
                                (4, 3, 7, 6), {})))  # fmt: skip
    for hw, size in (((7, 7), (3, 3)), ((10, 6), (4, 4)), ((5, 9), (5, 2)), ((8, 8), (1, 1))):

        def adaptive(hw: tuple[int, int] = hw, size: tuple[int, int] = size) -> dict:
            return compare(nn.AdaptiveAvgPool2D(size), tnn.AdaptiveAvgPool2d(size), (3, 2, *hw), {})

        out.append((f"AdaptiveAvgPool2D({size}) on {hw[0]}x{hw[1]}", adaptive))
    out.append(("Residual(conv-BN-ReLU-conv-BN, 1x1 conv + BN shortcut, then ReLU), training mode", _residual))
    out.append(("Residual(Dense-Tanh-Dense, identity shortcut, then GELU)", _residual_dense))
    return out


def _residual() -> dict:
    ours = nn.Residual(
        [nn.Conv2D(3, 4, 3, stride=2, padding=1, bias=False), nn.BatchNorm2D(4), nn.ReLU(),
         nn.Conv2D(4, 4, 3, padding=1, bias=False), nn.BatchNorm2D(4)],
        [nn.Conv2D(3, 4, 1, stride=2, bias=False), nn.BatchNorm2D(4)], activation="relu",
    )  # fmt: skip
    # convolutions before batch norm without bias, as in ResNet: a bias there has an exactly zero
    # gradient (the norm removes it), which a relative error cannot measure
    body = tnn.Sequential(tnn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False), tnn.BatchNorm2d(4), tnn.ReLU(),
                          tnn.Conv2d(4, 4, 3, padding=1, bias=False), tnn.BatchNorm2d(4)).double()  # fmt: skip
    short = tnn.Sequential(tnn.Conv2d(3, 4, 1, stride=2, bias=False), tnn.BatchNorm2d(4)).double()

    class Block(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.shortcut = body, short

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.body(x) + self.shortcut(x))

    theirs = Block()
    named = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _copy(named[name], p.data)
    return compare(ours, theirs, (4, 3, 9, 9), {n: (lambda t=t: t) for n, t in named.items()}, 1.0)


def _residual_dense() -> dict:
    ours = nn.Residual([nn.Dense(6, 8), nn.Tanh(), nn.Dense(8, 6)], activation="gelu")
    lin1, lin2 = tnn.Linear(6, 8).double(), tnn.Linear(8, 6).double()
    for lin, dense in ((lin1, ours.body[0]), (lin2, ours.body[2])):
        _copy(lin.weight, dense.weight.data.T), _copy(lin.bias, dense.bias.data)

    def theirs(x: torch.Tensor) -> torch.Tensor:
        return tnn.functional.gelu(lin2(torch.tanh(lin1(x))) + x)

    params = {"body.0.weight": lambda: lin1.weight, "body.0.bias": lambda: lin1.bias,
              "body.2.weight": lambda: lin2.weight, "body.2.bias": lambda: lin2.bias}  # fmt: skip
    return compare(ours, theirs, (5, 6), params, 1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/layer_parity.md"))
    args = parser.parse_args()
    rows, worst_all = [], 0.0
    with nn.build_on(get_backend("cpu", seed=0), "float64"):
        for text, run in cases():
            errors = run()
            worst = max(errors.values())
            worst_all = max(worst_all, worst)
            detail = ", ".join(f"{k} {v:.1e}" for k, v in errors.items())
            rows.append(f"| {text} | {worst:.1e} | {'yes' if worst <= TARGET else '**no**'} | {detail} |")
            print(f"{worst:9.1e}  {text}")
    lines = [
        "# New layers against PyTorch, float64",
        "",
        f"`PYTHONPATH=. python benchmarks/layer_parity.py` (xnet {xnet.__version__}, PyTorch {torch.__version__}, "
        f"NumPy {np.__version__}, Python {platform.python_version()}, CPU). Same input, upstream gradient and "
        "weights on both sides; error = max |xnet - torch| / max |torch| per quantity; target <= 1e-6.",
        "",
        f"Worst over all layers: **{worst_all:.1e}**.",
        "",
        "| layer | worst error | <= 1e-6 | forward, input gradient, parameter gradients |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
    ]
    atomic_write_text(args.out, "\n".join(lines))
    print(f"worst {worst_all:.1e}; written to {args.out}")
    return 0 if worst_all <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
