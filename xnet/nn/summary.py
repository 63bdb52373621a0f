"""A model summary people can read: one row per layer (nested for residual blocks), then totals.

Each row: the layer's parameter path (as in checkpoints: "3.body.0"), a short description
("Conv2D 1->32 3x3 pad same"), its output shape per sample and its parameter count; rows fit
in 100 columns.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from xnet.nn.lazy import infer_shapes
from xnet.nn.module import Module
from xnet.nn.residual import Residual
from xnet.nn.sequential import Sequential

WIDTH = 100
_DESCRIPTION = 48  # columns for the description; longer ones are cut with "..."


_SHORT = {"padding": "pad", "dilation": "dil"}


def _compact(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "x".join(map(str, v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def _defaults(layer: Module) -> dict[str, Any]:
    """The constructor's default arguments, so that a description shows only what differs."""
    params = inspect.signature(type(layer).__init__).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def describe(layer: Module) -> str:
    """A short description of one layer: 'Dense 784->128', 'Conv2D 1->32 3x3 padding same', 'ELU 0.5'."""
    if isinstance(layer, Residual):
        short = "identity" if layer.shortcut is None else "projection"
        act = "" if layer.activation is None else f", then {layer.activation.config()['type']}"
        return f"Residual ({short} shortcut{act})"
    try:
        cfg = dict(layer.config())
    except NotImplementedError:
        return type(layer).__name__
    cfg.pop("type", None)
    defaults = _defaults(layer)
    for key, value in list(cfg.items()):
        default = defaults.get(key, inspect.Parameter.empty)
        if value == default or (isinstance(value, list) and tuple(value) in (default, (default, default))):
            del cfg[key]
    text = type(layer).__name__
    if "in_features" in cfg:
        text += f" {cfg.pop('in_features')}->{cfg.pop('out_features')}"
    elif "in_channels" in cfg:
        k = cfg.pop("kernel_size")
        text += f" {cfg.pop('in_channels')}->{cfg.pop('out_channels')} {_compact(k if isinstance(k, list) else [k, k])}"
    elif cfg:  # the first argument (a size, a rate) needs no name
        first = next(iter(cfg))
        text += f" {_compact(cfg.pop(first))}"
    if cfg.pop("bias", True) is False:
        text += " no bias"
    text += "".join(f" {_SHORT.get(k, k)} {_compact(v)}" for k, v in cfg.items())
    return text if len(text) <= _DESCRIPTION else text[: _DESCRIPTION - 3] + "..."


def _rows(module: Module, shape: tuple[int, ...], path: str, depth: int) -> tuple[list[tuple], tuple[int, ...]]:
    """(rows, output shape) for `module` given per-sample input `shape`; rows are (name, text, shape, params)."""
    if isinstance(module, Sequential):
        rows: list[tuple] = []
        for i, layer in enumerate(module.layers):
            inner, shape = _rows(layer, shape, f"{path}.{i}" if path else str(i), depth)
            rows += inner
        return rows, shape
    if isinstance(module, Residual):
        out = infer_shapes(module, shape, path)
        rows = [(path, depth, describe(module), out, module.num_parameters())]
        rows += _rows(module.body, shape, f"{path}.body", depth + 1)[0]
        if module.shortcut is not None:
            rows += _rows(module.shortcut, shape, f"{path}.shortcut", depth + 1)[0]
        return rows, out
    out = infer_shapes(module, shape, path)
    return [(path, depth, describe(module), out, module.num_parameters())], out


def summary_table(model: Module, input_shape: tuple[int, ...]) -> str:
    """The summary of `model` for per-sample `input_shape` (no batch axis), as text."""
    was_training = model.training
    model.eval()
    try:
        rows, _ = _rows(model, tuple(input_shape), "", 0)
    finally:
        model.train(was_training)
    cells = [("input", "", str(tuple(input_shape)), "")]
    for path, depth, text, shape, n in rows:
        cells.append(("  " * depth + path, text, str(shape), f"{n:,}" if n else "-"))
    w_name = max(6, *(len(c[0]) for c in cells))
    w_shape = max(12, *(len(c[2]) for c in cells))
    w_params = max(6, *(len(c[3]) for c in cells))
    w_text = min(_DESCRIPTION, max(5, *(len(c[1]) for c in cells)))
    w_text = max(5, min(w_text, WIDTH - w_name - w_shape - w_params - 6))
    head = f"{'name':<{w_name}}  {'layer':<{w_text}}  {'output shape':<{w_shape}}  {'params':>{w_params}}"
    lines = [head, "-" * len(head)]
    for name, text, shape, params in cells:
        text = text if len(text) <= w_text else text[: w_text - 3] + "..."
        lines.append(f"{name:<{w_name}}  {text:<{w_text}}  {shape:<{w_shape}}  {params:>{w_params}}".rstrip())
    total = model.num_parameters()
    buffers = sum(math.prod(b.shape) for _, b in model.named_buffers())
    lines.append("-" * len(head))
    # as Keras counts: running statistics are non-trainable parameters
    line = f"parameters: {total + buffers:,} total, {total:,} trainable"
    lines.append(line + (f", {buffers:,} non-trainable (running statistics)" if buffers else ""))
    return "\n".join(lines)


__all__ = ["WIDTH", "describe", "summary_table"]
