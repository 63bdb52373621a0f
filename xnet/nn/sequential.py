"""Sequential: layers applied one after another."""

from __future__ import annotations

import numbers
from typing import Any

from xnet.backends import Array
from xnet.nn.fused import NormReLUPool
from xnet.nn.fused_dense import DenseActivation
from xnet.nn.lazy import is_lazy
from xnet.nn.module import Module, set_cache
from xnet.nn.summary import summary_table


class Sequential(Module):
    """Apply `layers` in order; backward runs them in reverse.

    Set `needs_input_grad = False` when nothing needs the gradient of the input (the Trainer
    does, its input being data): backward then stops at the first layer with parameters, tells
    that layer to skip its own input gradient, and returns None.

    Runs of [BatchNorm2D ->] ReLU [-> MaxPool2D(2)] (two or three layers) are computed
    together, chunk by chunk, which moves far less memory (fused.py), and so are Dense -> ReLU,
    Sigmoid or Tanh (fused_dense.py: fewer passes and calls); the results are the same.
    `fuse = False` runs every layer on its own, e.g. to time or inspect the layers one by one.
    """

    def __init__(self, *layers: Module):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            _check_layer(layer, f"Sequential: item {i}")
        self.layers = list(layers)
        self._needs_input_grad = True
        self._first = 0  # backward runs layers[_first:] (all of them while the input needs a gradient)
        self.fuse = True
        self._steps: list[tuple[int, Any]] = []  # (index of the first layer, layer or fused step)
        self._steps_key: tuple = ()
        self._backward_ready = False  # a forward ran and its gradients are not yet added

    @property
    def needs_input_grad(self) -> bool:
        """Whether backward computes the gradient of the input (True unless turned off)."""
        return self._needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, value: bool) -> None:
        value = bool(value)
        if self._first < len(self.layers):  # undo what the previous setting told that layer
            _set_input_grad(self.layers[self._first], True)
        self._needs_input_grad = value
        self._first = 0 if value else _first_trained(self.layers)
        if not value and self._first < len(self.layers):
            _set_input_grad(self.layers[self._first], False)

    def forward(self, x: Array) -> Array:
        """Input of the first layer's shape -> output of the last layer's shape."""
        for _, step in self._plan():
            x = step.forward(x)
        set_cache(self, "_backward_ready", True)
        return x

    def backward(self, grad_out: Array) -> Array | None:
        """Gradient of the last output -> gradient of the input (None if not needs_input_grad)."""
        ready = self._backward_ready
        if not ready and self._steps:
            # the layers still hold the last forward's values, so a second backward would add
            # the same gradients again; PyTorch refuses it too (its graph is freed)
            raise RuntimeError(
                "Sequential.backward: called twice after one forward (the gradients were already "
                "added); run forward again first"
            )
        first = 0 if self._needs_input_grad else self._first
        # the steps (and caches) of the last forward; made here when none ran (their error says so)
        for start, step in reversed(self._steps or self._plan()):
            # a fused step never straddles `first` (the first layer with parameters): the only
            # layer with parameters in one is the batch norm or Dense it starts with
            if start < first:
                break
            grad_out = step.backward(grad_out)
            if ready:  # a step has added its gradients
                set_cache(self, "_backward_ready", False)
                ready = False
        return grad_out if self._needs_input_grad else None

    def _on_backend_change(self) -> None:
        self._steps, self._steps_key = [], ()  # fused steps hold arrays of the old device

    def _plan(self) -> list[tuple[int, Any]]:
        """The steps forward runs: each layer, or a fused step for a run of layers (fused.py).

        Rebuilt only when the layers, their types or `fuse` changed (a LazyDense becomes a Dense
        in its first forward, and can fuse from the next); backward runs the last forward's steps."""
        # (fuse, a copy of the layer list, their types while a lazy layer among them may still change class)
        fuse, planned, types = self._steps_key or (None, None, None)
        layers = self.layers
        if fuse != self.fuse or planned != layers or (types is not None and types != tuple(map(type, layers))):
            lazy = any(map(is_lazy, layers))
            key = (self.fuse, list(layers), tuple(map(type, layers)) if lazy else None)
            steps, i = [], 0
            while i < len(self.layers):
                fused = (NormReLUPool.at(self.layers, i) or DenseActivation.at(self.layers, i)) if self.fuse else None
                steps.append((i, fused or self.layers[i]))
                i += fused.size if fused else 1
            self._steps, self._steps_key = steps, key
        return self._steps

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def append(self, layer: Module) -> Sequential:
        """Add a layer at the end; returns self."""
        _check_layer(layer, "Sequential.append: the layer")
        self.layers.append(layer)
        self.needs_input_grad = self._needs_input_grad  # the first trained layer may be the new one
        return self

    def config(self) -> dict[str, Any]:
        return {"type": "sequential", "layers": [layer.config() for layer in self.layers]}

    def build(self, input_shape: tuple[int, ...] | int) -> Sequential:
        """Take lazy sizes (LazyDense, LazyConv2D) from per-sample `input_shape` and check given ones; returns self.

        Call before making the optimizer, so it sees every parameter (xnet/nn/lazy.py).
        """
        shape = _sample_shape(input_shape, "build")
        was_training = self.training
        try:
            self.infer_shape(shape)
        finally:
            self.train(was_training)
        self.input_shape = shape
        return self

    def summary(self, input_shape: tuple[int, ...] | int | None = None) -> str:
        """A table of layers, output shapes (per sample) and parameter counts for `input_shape`.

        `input_shape` excludes the batch axis, e.g. (784,) or (1, 28, 28); an int n means (n,);
        None: the shape given to build(). Residual blocks list their layers nested below them.
        """
        if input_shape is None:
            input_shape = getattr(self, "input_shape", None)
        return summary_table(self, _sample_shape(input_shape))

    def infer_shape(self, shape: tuple[int, ...], name: str = "") -> tuple[int, ...]:
        """The layers' shapes one after another; the last one's output shape."""
        for i, layer in enumerate(self.layers):
            shape = layer.infer_shape(shape, f"{name}.{i}" if name else str(i))
        if self.parameters():  # layers built here: let the first trained one skip its input gradient
            self.needs_input_grad = self.needs_input_grad
        return shape

    def shape_rows(self, shape: tuple[int, ...], path: str, depth: int) -> tuple[list[tuple], tuple[int, ...]]:
        """A row per layer, at this depth (a Sequential has no row of its own)."""
        rows: list[tuple] = []
        for i, layer in enumerate(self.layers):
            inner, shape = layer.shape_rows(shape, f"{path}.{i}" if path else str(i), depth)
            rows += inner
        return rows, shape

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"


def _check_layer(layer: Any, what: str) -> None:
    """TypeError unless `layer` is a Module instance (the message names `what` and what it is)."""
    if not isinstance(layer, Module):
        hint = " (pass a layer such as ReLU(), not its name)" if isinstance(layer, str) else ""
        raise TypeError(f"{what} is a {type(layer).__name__}, not a Module{hint}")


def _sample_shape(shape: Any, method: str = "summary") -> tuple[int, ...]:
    """summary's input_shape as a tuple of positive ints; an int n is (n,), as Keras accepts."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in shape
    ):
        raise TypeError(
            f"Sequential.{method}: input_shape must be a tuple of ints per sample, without the batch axis, "
            f"such as (784,) or (1, 28, 28); got {shape!r}"
        )
    if any(d <= 0 for d in shape):
        raise ValueError(f"Sequential.{method}: input_shape must hold positive sizes, got {tuple(shape)}")
    return tuple(int(d) for d in shape)


def _first_trained(layers: list[Module]) -> int:
    """Index of the first layer with parameters (len(layers) when none has any)."""
    return next((i for i, layer in enumerate(layers) if layer.parameters()), len(layers))


def _set_input_grad(layer: Module, value: bool) -> None:
    """Tell a layer whether to compute its input gradient; layers without the switch always do."""
    if hasattr(layer, "needs_input_grad"):
        layer.needs_input_grad = value
