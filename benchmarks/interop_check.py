"""xnet <-> PyTorch weights, checked: a round trip through a torch state dict, and a torch twin's outputs.

    PYTHONPATH=. XNET_DATA_DIR=... .bench-venv/bin/python -m benchmarks.interop_check [--out FILE.md]

For the default MLP, the cnn and the bn-cnn presets and a residual CNN (experiments/resnet-mnist.toml's
layers at a quarter of their widths), each after four Adam steps from random weights (batch-norm
statistics from those batches): xnet -> torch state dict -> a fresh xnet model must give back the
identical arrays, and an nn.Sequential built to match (`torch_twin`) loaded with the state dict must give
outputs within 1e-5 of xnet's on 1,000 MNIST test images (float32, evaluation mode).
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from xnet.backends import get_backend
from xnet.interop import from_torch_state_dict, to_torch_state_dict
from xnet.losses import get_loss
from xnet.models import build_preset
from xnet.nn.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from xnet.nn.adaptive_pool import AdaptiveAvgPool2D, GlobalAvgPool2D
from xnet.nn.batchnorm import BatchNorm1D, BatchNorm2D
from xnet.nn.conv import Conv2D
from xnet.nn.dense import Dense
from xnet.nn.dropout import Dropout
from xnet.nn.layernorm import LayerNorm
from xnet.nn.module import Module, build_on
from xnet.nn.pooling import AvgPool2D, MaxPool2D
from xnet.nn.registry import model_from_config
from xnet.nn.residual import Residual
from xnet.nn.sequential import Sequential
from xnet.nn.shape import Flatten, Reshape
from xnet.nn.smooth import ELU, GELU, SiLU, Softplus
from xnet.optim import get_optimizer

MODELS = ("mlp", "cnn", "bn-cnn", "residual-cnn")
TOLERANCE = 1e-5
RESNET_RECIPE = Path(__file__).resolve().parents[1] / "experiments" / "resnet-mnist.toml"


def _narrowed(tables: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """Layer tables with every channel count divided by k, nested residual tables too."""
    out = []
    for table in tables:
        table = {key: v // k if key in ("out_channels", "num_channels") else v for key, v in table.items()}
        for nested in ("layers", "shortcut"):
            if nested in table:
                table[nested] = _narrowed(table[nested], k)
        out.append(table)
    return out


def residual_cnn(narrow: int = 4) -> Sequential:
    """experiments/resnet-mnist.toml's network for MNIST (conv stem, two residual blocks with 1x1-conv
    shortcuts, global average pooling, dense) with its widths divided by `narrow`: 8, 16, 32 channels."""
    layers = tomllib.loads(RESNET_RECIPE.read_text())["model"]["layers"]
    return model_from_config({"layers": _narrowed(layers, narrow)}).build((1, 28, 28))  # lazy sizes from MNIST


def build(name: str, seed: int = 0) -> Sequential:
    """One of MODELS (presets and the residual CNN) for MNIST (1, 28, 28) -> 10, initialised from `seed`."""
    with build_on(get_backend("cpu", seed)):  # its own random stream: the same weights whatever ran before
        return residual_cnn() if name == "residual-cnn" else build_preset(name, (1, 28, 28), 10)


def torch_twin(layer: Module) -> Any:
    """The PyTorch module computing what xnet's `layer` computes, with the same submodule names (weights not copied)."""
    from torch import nn

    class _Reshape(nn.Module):
        def __init__(self, shape: tuple[int, ...]) -> None:
            super().__init__()
            self.shape = shape

        def forward(self, x: Any) -> Any:
            return x.reshape(x.shape[0], *self.shape)

    t = type(layer)

    class _Residual(nn.Module):
        def __init__(self, body: Any, shortcut: Any, activation: Any) -> None:
            super().__init__()
            self.body, self.shortcut, self.activation = body, shortcut, activation

        def forward(self, x: Any) -> Any:
            z = self.body(x) + (x if self.shortcut is None else self.shortcut(x))
            return z if self.activation is None else self.activation(z)

    def twin_or_none(child: Module | None) -> Any:
        return None if child is None else torch_twin(child)

    if t is Sequential:
        return nn.Sequential(*[torch_twin(child) for child in layer.layers])
    if t is Residual:  # attributes named as xnet's: "3.body.0.weight", "3.shortcut.1.running_var"
        return _Residual(torch_twin(layer.body), twin_or_none(layer.shortcut), twin_or_none(layer.activation))
    if t is Dense:
        return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    if t is Conv2D:
        padding = "same" if layer.padding == "same" else (layer.pads[0], layer.pads[2])
        return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, padding,
                         layer.dilation, layer.groups, bias=layer.bias is not None)  # fmt: skip
    if t in (BatchNorm1D, BatchNorm2D):
        return (nn.BatchNorm1d if t is BatchNorm1D else nn.BatchNorm2d)(layer.num_features, layer.eps, layer.momentum)
    if t is MaxPool2D:
        return nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
    if t is AvgPool2D:
        return nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding, count_include_pad=True)
    if t is LayerNorm:
        return nn.LayerNorm(layer.normalized_shape, layer.eps, elementwise_affine=layer.weight is not None)
    if t is GlobalAvgPool2D:
        pool = nn.AdaptiveAvgPool2d(1)
        return pool if layer.keepdims else nn.Sequential(pool, nn.Flatten())
    simple = {Dropout: lambda: nn.Dropout(layer.p), Flatten: nn.Flatten, Reshape: lambda: _Reshape(layer.shape),
              ReLU: nn.ReLU, LeakyReLU: lambda: nn.LeakyReLU(layer.alpha), Sigmoid: nn.Sigmoid, Tanh: nn.Tanh,
              Identity: nn.Identity, Softmax: lambda: nn.Softmax(dim=-1), SiLU: nn.SiLU,
              GELU: lambda: nn.GELU(approximate=layer.approximate), ELU: lambda: nn.ELU(layer.alpha),
              Softplus: lambda: nn.Softplus(layer.beta, layer.threshold),
              AdaptiveAvgPool2D: lambda: nn.AdaptiveAvgPool2d(layer.output_size)}  # fmt: skip
    if t in simple:
        return simple[t]()
    raise TypeError(f"torch_twin: no PyTorch twin for {t.__name__}")


def settled_model(preset: str, x: np.ndarray, seed: int, y: np.ndarray | None = None) -> Sequential:
    """Model `preset` (of MODELS) after four training-mode batches of `x`, in evaluation mode.

    With labels `y` the four batches are Adam steps (lr 0.003, cross-entropy): weights that have started
    to learn and logits of a useful size. Batch norms hold the running statistics of those batches.
    """
    model = build(preset, seed)
    rng = np.random.default_rng(seed)
    # biases and batch-norm scales and shifts (zeros and ones at first) get small random values, so
    # that no layout mistake hides behind a symmetric value
    model.load_state_dict({
        k: v if k.endswith(".weight") and v.ndim > 1 else v + rng.normal(0, 0.1, v.shape)
        for k, v in model.state_dict().items()
    })  # fmt: skip
    model.train()
    optimizer = get_optimizer("adam", model.parameters(), lr=0.003) if y is not None else None
    loss = get_loss("cross-entropy")
    for i in range(0, 512, 128):
        out = model.forward(x[i : i + 128])  # updates the running statistics
        if optimizer is not None:
            optimizer.zero_grad()
            loss.forward(out, y[i : i + 128])
            model.backward(loss.backward())
            optimizer.step()
    return model.eval()


def check(preset: str, x_train: np.ndarray, x_test: np.ndarray, y_train: np.ndarray | None = None) -> dict[str, Any]:
    """Round trip and twin comparison for one preset."""
    import torch

    model = settled_model(preset, x_train, MODELS.index(preset), y_train)
    state = to_torch_state_dict(model)
    fresh = build(preset)
    from_torch_state_dict(fresh, state)
    a, b = model.state_dict(), fresh.state_dict()
    identical = a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    twin = torch_twin(model)
    twin.load_state_dict(state)  # strict: every name and shape must fit
    twin.eval()
    with torch.no_grad():
        ours = model.backend.to_numpy(model.forward(x_test))
        theirs = twin(torch.from_numpy(x_test)).numpy()
    diff = float(np.abs(ours - theirs).max())
    agree = float((ours.argmax(1) == theirs.argmax(1)).mean())
    return {"preset": preset, "round_trip_identical": identical, "max_abs_diff": diff, "same_class": agree,
            "max_abs_output": float(np.abs(ours).max())}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the results as a Markdown table to this file")
    args = parser.parse_args(argv)
    import torch

    from xnet.data import load_dataset

    torch.set_num_threads(1)  # the comparison, not the speed: one thread gives the same sums every run
    ds = load_dataset("mnist")
    x_train, y_train, x_test = ds.train.x[:512], ds.train.y[:512], ds.test.x[:1000]
    rows = [check(p, x_train, x_test, y_train) for p in MODELS]
    lines = [
        f"xnet <-> PyTorch {torch.__version__} state dicts, float32, 1,000 MNIST test images "
        "(`python -m benchmarks.interop_check`). Each model: random initial weights, then four Adam steps "
        "(lr 0.003, batches of 128 training images); residual-cnn is experiments/resnet-mnist.toml's network "
        "at a quarter of its widths (8, 16, 32 channels).",
        "",
        "| model | xnet -> torch -> xnet identical | largest output | max abs difference vs torch twin | same class |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['preset']} | {r['round_trip_identical']} | {r['max_abs_output']:.2f} "
                     f"| {r['max_abs_diff']:.2e} | {r['same_class']:.2%} |")  # fmt: skip
    ok = all(r["round_trip_identical"] and r["max_abs_diff"] <= TOLERANCE for r in rows)
    lines += ["", f"tolerance {TOLERANCE:g}: {'all within' if ok else 'EXCEEDED'}"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        from xnet.atomic import atomic_write_text

        atomic_write_text(args.out, text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
