"""ONNX forms of the layers that average: LayerNorm, global and adaptive average pooling (opset 17)."""

from __future__ import annotations

import numpy as np

from xnet.export.graph import Graph
from xnet.nn.adaptive_pool import AdaptiveAvgPool2D, GlobalAvgPool2D, bin_matrix
from xnet.nn.layernorm import LayerNorm


def _layer_norm(g: Graph, layer: LayerNorm, x: str, name: str) -> str:
    # LayerNormalization-17 normalises over the axes from `axis` to the last: xnet's trailing normalized_shape
    if layer.weight is not None:
        host = layer.backend.to_numpy
        inputs = [x] + [
            g.weight(f"{name}.{what}", host(p.data)) for what, p in (("weight", layer.weight), ("bias", layer.bias))
        ]
    else:
        inputs = [x, g.weight(f"{name}.ones", np.ones(layer.normalized_shape))]  # ONNX's Scale is not optional
    return g.node(
        "LayerNormalization", inputs, f"{name}.layernorm", axis=-len(layer.normalized_shape), epsilon=layer.eps
    )


def _global_avg_pool(g: Graph, layer: GlobalAvgPool2D, x: str, name: str) -> str:
    y = g.node("GlobalAveragePool", [x], f"{name}.globalaveragepool")  # (N, C, 1, 1)
    return y if layer.keepdims else g.node("Flatten", [y], f"{name}.flatten", axis=1)  # (N, C)


def _adaptive_avg_pool(g: Graph, layer: AdaptiveAvgPool2D, x: str, name: str) -> str:
    _, h, w = g.shapes[x]
    oh, ow = layer.output_size
    if h % oh == 0 and w % ow == 0:  # bins of one size that tile the image: a plain average pool
        kernel = [h // oh, w // ow]
        return g.node("AveragePool", [x], f"{name}.averagepool", kernel_shape=kernel, strides=kernel)
    # bins of several sizes (maybe overlapping): y = A_h x A_w^T with the bin-averaging matrices, as xnet computes it
    rows = g.node("MatMul", [g.weight(f"{name}.rows", bin_matrix(h, oh)), x], f"{name}.pool_rows")  # (N, C, oh, W)
    cols = g.weight(f"{name}.cols", np.ascontiguousarray(bin_matrix(w, ow).T))
    return g.node("MatMul", [rows, cols], f"{name}.pool_cols")  # (N, C, oh, ow)


AVERAGING_LAYERS = {LayerNorm: _layer_norm, GlobalAvgPool2D: _global_avg_pool, AdaptiveAvgPool2D: _adaptive_avg_pool}
