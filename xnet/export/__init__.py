"""Models leaving xnet: `to_onnx(model, path, input_shape)`; the per-layer table is ONNX_LAYERS."""

from xnet.export.layers import ONNX_LAYERS, UnsupportedLayer, export_layer
from xnet.export.onnx_model import build_onnx, to_onnx

__all__ = ["ONNX_LAYERS", "UnsupportedLayer", "build_onnx", "export_layer", "to_onnx"]
