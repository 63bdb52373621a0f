"""Parity of xnet's Adadelta, Adamax, NAdam, RAdam and Lion with PyTorch's, in float64.

Not a test (PyTorch is no xnet dependency): run it with a Python that has torch,

    PYTHONPATH=. python benchmarks/optim_parity.py [--steps 25] [--out benchmarks/results/optim_parity.md]

Each configuration starts both sides from the same weights (a (7, 5) weight, a (5,) bias) and
feeds both the same gradients for every step: g = 0.4 * w + cos(w) + noise_k, computed from xnet's
current weights, so a difference in the update feeds back into later gradients and shows. PyTorch
decays every parameter, so xnet's side sets decay_all. Lion is not in PyTorch: its reference is
the paper's Algorithm 2 (as optax computes it) written in torch operations here.
Reported: the largest |xnet - torch| / max(|torch|, 1e-12) over every element after every step.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xnet.atomic import atomic_write_text
from xnet.backends import get_backend
from xnet.nn.parameter import Parameter
from xnet.optim import get_optimizer

TORCH = {"adadelta": "Adadelta", "adamax": "Adamax", "nadam": "NAdam", "radam": "RAdam"}
# (xnet optimizer, options under their PyTorch names; beta1/beta2 become PyTorch's betas)
CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("adadelta", {}),
    ("adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.1}),
    ("adamax", {}),
    ("adamax", {"lr": 0.01, "beta1": 0.8, "beta2": 0.95, "eps": 1e-6, "weight_decay": 0.05}),
    ("nadam", {}),
    ("nadam", {"lr": 0.01, "beta1": 0.85, "beta2": 0.99, "momentum_decay": 0.01, "weight_decay": 0.05}),
    ("nadam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("radam", {}),  # rho_t > 5 from step 6 on (beta2 = 0.999): both branches run
    ("radam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.9, "eps": 1e-6, "weight_decay": 0.05}),
    ("radam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("lion", {}),
    ("lion", {"lr": 0.003, "beta1": 0.8, "beta2": 0.95, "weight_decay": 0.1}),
]


class LionReference(torch.optim.Optimizer):
    """Lion as the paper's Algorithm 2: c = b1 m + (1-b1) g; w -= lr (sign(c) + wd w); m = b2 m + (1-b2) g."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                m = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                update = torch.sign(b1 * m + (1 - b1) * p.grad) + group["weight_decay"] * p
                p.add_(update, alpha=-group["lr"])
                m.mul_(b2).add_(p.grad, alpha=1 - b2)


def torch_optimizer(name: str, params: list, opts: dict[str, Any]) -> torch.optim.Optimizer:
    kw = dict(opts)
    if "beta1" in kw or "beta2" in kw:
        default = (0.9, 0.99) if name == "lion" else (0.9, 0.999)
        kw["betas"] = (kw.pop("beta1", default[0]), kw.pop("beta2", default[1]))
    if name == "lion":
        return LionReference(params, **kw)
    kw.setdefault("lr", {"adadelta": 1.0, "adamax": 0.002, "nadam": 0.002, "radam": 0.001}[name])
    return getattr(torch.optim, TORCH[name])(params, foreach=False, **kw)


def compare(name: str, opts: dict[str, Any], steps: int) -> float:
    """The largest relative difference between xnet's and PyTorch's weights over `steps` steps."""
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(7, 5)), rng.normal(size=(5,))]
    noise = [[rng.normal(size=a.shape) * 0.5 for a in start] for _ in range(steps)]
    backend = get_backend("cpu", seed=0)
    ours = [Parameter(backend.asarray(a.copy(), "float64"), n, regularize=n == "weight")
            for a, n in zip(start, ("weight", "bias"), strict=True)]  # fmt: skip
    theirs = [torch.tensor(a.copy(), dtype=torch.float64, requires_grad=True) for a in start]
    opt = get_optimizer(name, [{"params": ours, "decay_all": True}], **opts)
    topt = torch_optimizer(name, theirs, opts)
    worst = 0.0
    for k in range(steps):
        grads = [0.4 * p.data + np.cos(p.data) + n for p, n in zip(ours, noise[k], strict=True)]
        for p, t, g in zip(ours, theirs, grads, strict=True):
            p.grad = backend.asarray(g.copy(), "float64")
            t.grad = torch.tensor(g.copy(), dtype=torch.float64)
        opt.step()
        topt.step()
        for p, t in zip(ours, theirs, strict=True):
            ref = t.detach().numpy()
            worst = max(worst, float(np.max(np.abs(p.data - ref) / np.maximum(np.abs(ref), 1e-12))))
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here too")
    args = ap.parse_args(argv)
    torch.set_default_dtype(torch.float64)  # PyTorch's scalar state (NAdam's mu_product) in float64 too
    rows = ["| optimizer | options | max relative difference |", "|---|---|---|"]
    worst_all = 0.0
    for name, opts in CONFIGS:
        worst = compare(name, opts, args.steps)
        worst_all = max(worst_all, worst)
        text = ", ".join(f"{k}={v}" for k, v in opts.items()) or "defaults"
        rows.append(f"| {name} | {text} | {worst:.2e} |")
    head = (
        f"# Optimizer parity with PyTorch {torch.__version__} (float64, {args.steps} steps, CPU)\n\n"
        "Made by `PYTHONPATH=. python benchmarks/optim_parity.py --out benchmarks/results/optim_parity.md`: "
        "the same start and gradients on both sides (see the script's docstring); target <= 1e-6.\n"
        "Lion's reference is the paper's Algorithm 2 in torch operations (PyTorch has no Lion).\n\n"
    )
    text = head + "\n".join(rows) + f"\n\nworst over all: {worst_all:.2e}\n"
    print(text, end="")
    if args.out is not None:
        atomic_write_text(args.out, text)
    return 0 if worst_all <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
