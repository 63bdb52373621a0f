"""A small ONNX graph under construction: nodes, weights (initializers) and fresh value names."""

from __future__ import annotations

from typing import Any

import numpy as np

from xnet.errors import XnetError

OPSET = 17  # BatchNormalization-15, Softmax-13 (last axis), Reshape-14: what onnxruntime >= 1.14 runs


def import_onnx() -> Any:
    """The `onnx` package, or one line saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise XnetError('ONNX export needs the onnx package: pip install "xnet[onnx]"') from None
    return onnx


class Graph:
    """Nodes in execution order and the arrays they read, named "<layer>.<what>" after xnet's own names."""

    def __init__(self, dtype: np.dtype) -> None:
        self.onnx = import_onnx()
        self.dtype = np.dtype(dtype)  # the model's float type: every weight is stored in it
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.shapes: dict[str, tuple[int, ...]] = {}  # per-sample shape of each layer's output value
        self._names: set[str] = set()

    def name(self, base: str) -> str:
        """`base`, or `base_2`, `base_3`... when taken: every ONNX value has one producer."""
        name, k = base, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def weight(self, name: str, value: Any, dtype: Any = None) -> str:
        """Add a constant array (host copy, in the model's float type unless `dtype`); returns its name."""
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self.name(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def constant(self, name: str, value: float) -> str:
        """A scalar in the model's float type (broadcast by the elementwise ops that read it)."""
        return self.weight(name, value)

    def node(self, op: str, inputs: list[str], name: str, **attributes: Any) -> str:
        """Append one `op` node reading `inputs`; returns the name of its one output."""
        out = self.name(name)
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=out, **attributes))
        return out
