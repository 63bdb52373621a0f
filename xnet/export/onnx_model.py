"""`to_onnx`: an xnet model as an ONNX file (float32 or float64, any batch size), checked by onnx.checker."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import xnet
from xnet.atomic import atomic_write_bytes
from xnet.data.prepare import Normalization
from xnet.export.graph import OPSET, Graph
from xnet.export.layers import UnsupportedLayer, export_layer
from xnet.nn.lazy import require_built
from xnet.nn.module import Module, float_dtype

INPUT, OUTPUT = "input", "output"


def _sample_shape(input_shape: Sequence[int] | int) -> tuple[int, ...]:
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    if not shape or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(f"to_onnx: input_shape must be the positive sizes of one sample, such as (1, 28, 28); "
                         f"got {input_shape!r}")  # fmt: skip
    return tuple(int(d) for d in shape)


def _normalize(g: Graph, norm: Normalization, x: str) -> str:
    """(x - offset) / scale as xnet prepares data (a subtraction, then a division, skipped when neutral)."""
    if norm.offset != 0:
        x = g.node("Sub", [x, g.weight("normalization.offset", norm.offset)], "normalization.sub")
    if norm.scale != 1:
        x = g.node("Div", [x, g.weight("normalization.scale", norm.scale)], "normalization.div")
    return x


def build_onnx(
    model: Module,
    input_shape: Sequence[int] | int,
    normalization: Normalization | None = None,
    metadata: Mapping[str, Any] | None = None,
    dtype: str | None = None,
) -> Any:
    """The checked onnx.ModelProto of `model` in evaluation mode: input (N, *input_shape) -> output (N, ...).

    With `normalization`, the graph takes raw values (pixels 0..255) and applies it first.
    `metadata` values (str, or anything JSON-able) go to the model's metadata_props. `dtype`
    ("float32" or "float64", default the model's) is the graph's float type: onnxruntime's CPU
    provider has no float64 Conv, pooling, Erf, Elu or Softplus, so a float64 model holding one is
    exported as float32 to run there.
    """
    shape = _sample_shape(input_shape)
    # the forward pass below would build a lazy layer with fresh random weights: not the trained model
    require_built(model, "export to ONNX", UnsupportedLayer)
    was_training = model.training
    model.eval()
    try:
        # one sample through xnet first: a shape the model does not take is xnet's clear error, not ONNX's
        out = model.forward(model.backend.asarray(np.zeros((1, *shape)), model.dtype))
        g = Graph(np.dtype(float_dtype(dtype or model.dtype, "to_onnx")))
        x = _normalize(g, normalization, INPUT) if normalization is not None else INPUT
        g.shapes[x] = shape
        y = export_layer(g, model, x, "")
    finally:
        model.train(was_training)
    onnx, helper = g.onnx, g.onnx.helper
    if not g.nodes or g.nodes[-1].output[0] != y:  # e.g. identities alone: a node must write the output
        y = g.node("Identity", [y], "identity")
    g.nodes[-1].output[0] = OUTPUT  # the last node writes the graph's output under a stable name
    elem = helper.np_dtype_to_tensor_dtype(g.dtype)
    graph = helper.make_graph(
        g.nodes, "xnet",
        [helper.make_tensor_value_info(INPUT, elem, ["N", *shape])],
        [helper.make_tensor_value_info(OUTPUT, elem, ["N", *tuple(out.shape)[1:]])],
        initializer=g.initializers,
    )  # fmt: skip
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="xnet", producer_version=xnet.__version__
    )
    proto.ir_version = min(proto.ir_version, 8)  # readable by onnxruntime 1.14 and later
    props = {"xnet_version": xnet.__version__, **dict(metadata or {})}
    helper.set_model_props(proto, {k: v if isinstance(v, str) else json.dumps(v) for k, v in props.items()})
    onnx.checker.check_model(proto, full_check=True)  # full_check: shape inference over the whole graph too
    return proto


def to_onnx(
    model: Module,
    path: str | Path,
    input_shape: Sequence[int] | int,
    normalization: Normalization | None = None,
    metadata: Mapping[str, Any] | None = None,
    dtype: str | None = None,
) -> Path:
    """Write `model` (evaluation mode) as ONNX to `path`, atomically; see build_onnx for the arguments."""
    proto = build_onnx(model, input_shape, normalization, metadata, dtype)
    path = Path(path)
    atomic_write_bytes(path, proto.SerializeToString())
    return path
