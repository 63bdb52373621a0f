"""How each xnet layer type becomes ONNX nodes: one small function per type, found in ONNX_LAYERS.

A converter takes (graph, layer, input value name, the layer's dotted name as in state_dict) and
returns the name of its output value; `g.shapes` holds the per-sample shape of every layer's input
(export_layer records each output's). Adding a layer type is one function and one table entry, e.g.

    def _hardswish(g, layer, x, name):
        return g.node("HardSwish", [x], f"{name}.hardswish")   # opset 14
    ONNX_LAYERS[HardSwish] = _hardswish

The smooth activations live in smooth.py, the averaging layers in averages.py. A container
converts its children with `export_layer` (Sequential, Residual below). Types are matched exactly:
a subclass may compute something else, so it is refused until it has its own entry. A lazy layer
that was built is a Dense / Conv2D (it changes class when built); one not built yet is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xnet.errors import XnetError
from xnet.export.averages import AVERAGING_LAYERS
from xnet.export.graph import Graph
from xnet.export.smooth import SMOOTH_LAYERS
from xnet.nn.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from xnet.nn.batchnorm import BatchNorm1D, BatchNorm2D
from xnet.nn.conv import Conv2D
from xnet.nn.dense import Dense
from xnet.nn.dropout import Dropout
from xnet.nn.module import Module
from xnet.nn.pooling import AvgPool2D, MaxPool2D
from xnet.nn.residual import Residual
from xnet.nn.sequential import Sequential
from xnet.nn.shape import Flatten, Reshape

Converter = Callable[[Graph, Any, str, str], str]


class UnsupportedLayer(XnetError):
    """A layer with no ONNX form in xnet's exporter (yet)."""


def _host(layer: Module, array: Any) -> Any:
    return layer.backend.to_numpy(array)


def _onnx_pads(pads: tuple[int, int, int, int]) -> list[int]:
    """xnet's (top, bottom, left, right) -> ONNX's [begin H, begin W, end H, end W]."""
    top, bottom, left, right = pads
    return [top, left, bottom, right]


def _dense(g: Graph, layer: Dense, x: str, name: str) -> str:
    # xnet keeps W as (in, out), which is Gemm's B as it is: y = x W + b
    inputs = [x, g.weight(f"{name}.weight", _host(layer, layer.weight.data))]
    if layer.bias is not None:
        inputs.append(g.weight(f"{name}.bias", _host(layer, layer.bias.data)))
    return g.node("Gemm", inputs, f"{name}.gemm")


def _conv2d(g: Graph, layer: Conv2D, x: str, name: str) -> str:
    inputs = [x, g.weight(f"{name}.weight", _host(layer, layer.weight.data))]  # (C_out, C_in/groups, kh, kw) in both
    if layer.bias is not None:
        inputs.append(g.weight(f"{name}.bias", _host(layer, layer.bias.data)))
    return g.node(
        "Conv", inputs, f"{name}.conv", kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
        dilations=list(layer.dilation), pads=_onnx_pads(layer.pads), group=layer.groups,
    )  # fmt: skip


def _pool(op: str, **extra: Any) -> Converter:
    def convert(g: Graph, layer: Any, x: str, name: str) -> str:
        # floor division of the output size (ceil_mode 0) as xnet; MaxPool ignores the padding as -inf would
        return g.node(
            op, [x], f"{name}.{op.lower()}", kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
            pads=_onnx_pads(layer.pads), ceil_mode=0, **extra,
        )  # fmt: skip

    return convert


def _batch_norm(g: Graph, layer: Any, x: str, name: str) -> str:
    # evaluation mode: the running statistics are constants (ONNX's training_mode 0)
    inputs = [x] + [
        g.weight(f"{name}.{what}", _host(layer, value))
        for what, value in (
            ("weight", layer.weight.data), ("bias", layer.bias.data),
            ("running_mean", layer.running_mean), ("running_var", layer.running_var),
        )
    ]  # fmt: skip
    return g.node("BatchNormalization", inputs, f"{name}.batchnorm", epsilon=layer.eps)


def _same(g: Graph, layer: Any, x: str, name: str) -> str:
    return x  # Dropout in evaluation and Identity: no node at all


def _elementwise(op: str, **attributes: Callable[[Any], Any]) -> Converter:
    def convert(g: Graph, layer: Any, x: str, name: str) -> str:
        return g.node(op, [x], f"{name}.{op.lower()}", **{k: get(layer) for k, get in attributes.items()})

    return convert


def _flatten(g: Graph, layer: Flatten, x: str, name: str) -> str:
    return g.node("Flatten", [x], f"{name}.flatten", axis=1)  # (N, d1, d2, ...) -> (N, d1*d2*...)


def _reshape(g: Graph, layer: Reshape, x: str, name: str) -> str:
    # 0 keeps the input's batch size (allowzero 0), whatever it is at run time; -1 is inferred as in xnet
    shape = g.weight(f"{name}.shape", [0, *layer.shape], dtype="int64")
    return g.node("Reshape", [x, shape], f"{name}.reshape")


def _child(name: str, child: str | int) -> str:
    """The dotted name of a sub-layer, as state_dict names it ("3.body.0")."""
    return f"{name}.{child}" if name else str(child)


def _sequential(g: Graph, layer: Sequential, x: str, name: str) -> str:
    for i, child in enumerate(layer.layers):
        x = export_layer(g, child, x, _child(name, i))
    return x


def _residual(g: Graph, layer: Residual, x: str, name: str) -> str:
    # activation(body(x) + shortcut(x)); an identity shortcut reads x itself
    body = export_layer(g, layer.body, x, _child(name, "body"))
    short = x if layer.shortcut is None else export_layer(g, layer.shortcut, x, _child(name, "shortcut"))
    z = g.node("Add", [body, short], _child(name, "add"))
    g.shapes[z] = g.shapes[body]
    return z if layer.activation is None else export_layer(g, layer.activation, z, _child(name, "activation"))


ONNX_LAYERS: dict[type, Converter] = {
    Sequential: _sequential,
    Residual: _residual,
    Dense: _dense,
    Conv2D: _conv2d,
    MaxPool2D: _pool("MaxPool"),
    AvgPool2D: _pool("AveragePool", count_include_pad=1),  # padding zeros count in xnet's mean
    BatchNorm1D: _batch_norm,
    BatchNorm2D: _batch_norm,
    Dropout: _same,
    Identity: _same,
    Flatten: _flatten,
    Reshape: _reshape,
    ReLU: _elementwise("Relu"),
    LeakyReLU: _elementwise("LeakyRelu", alpha=lambda layer: layer.alpha),
    Sigmoid: _elementwise("Sigmoid"),
    Tanh: _elementwise("Tanh"),
    Softmax: _elementwise("Softmax", axis=lambda layer: -1),
    **SMOOTH_LAYERS,
    **AVERAGING_LAYERS,
}


def _output_shape(layer: Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-sample output shape of `layer` (evaluation mode) for per-sample input `shape`: a zero sample through it."""
    out = layer.forward(layer.backend.asarray(np.zeros((1, *shape)), layer.dtype))
    return tuple(int(d) for d in out.shape[1:])


def export_layer(g: Graph, layer: Module, x: str, name: str) -> str:
    """Append `layer`'s nodes reading value `x`; UnsupportedLayer names a layer type without an entry."""
    convert = ONNX_LAYERS.get(type(layer))
    if convert is None:
        where = f"layer {name} " if name else ""
        raise UnsupportedLayer(
            f"cannot export to ONNX: {where}{type(layer).__name__} has no ONNX form in xnet yet "
            f"(exportable: {', '.join(sorted({t.__name__ for t in ONNX_LAYERS}))})"
        )
    y = convert(g, layer, x, name)
    if y not in g.shapes:
        g.shapes[y] = _output_shape(layer, g.shapes[x])
    return y
