"""Dense -> ReLU, Sigmoid or Tanh run as one step of a Sequential.

An MLP's step on a CPU is many small operations: at batch 16 each layer's arrays are a few KB and
every pass over them costs more in calls than in arithmetic. Run together, the bias and the
activation are one pass over the product x @ W, written in place (Backend.fused_bias_activation),
and backward turns the output's gradient into the input's and sums it for the bias in one more
(Backend.fused_activation_grad); the step keeps x and the activation's output, and no ReLU mask.

The numbers are the layers' own: the same operations in the same order on the same values
(tests/nn/test_fused_dense.py compares the bits). Where the backend has no such kernel (strict,
CuPy for now) the two layers run one after another, as without fusing; `Sequential.fuse = False`
turns fusing off.
"""

from __future__ import annotations

from typing import Any

from xnet.backends import Array
from xnet.nn.activations import ReLU, Sigmoid, Tanh, relu_grad, sigmoid_grad, tanh_grad
from xnet.nn.checks import check_grad
from xnet.nn.dense import Dense
from xnet.nn.module import Module

KINDS = {ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh"}  # exact types: a subclass may compute otherwise


class DenseActivation:
    """layers [Dense, ReLU | Sigmoid | Tanh] of a Sequential as one step."""

    def __init__(self, layers: list[Module]):
        self.layers = layers
        self.dense: Dense = layers[0]  # type: ignore[assignment]
        self.act = layers[1]
        self.kind = KINDS[type(self.act)]
        self.size = 2  # how many layers this step stands for
        self._y: Array | None = None  # the activation's output, when the fused forward made it
        self._out_shape: tuple[int, ...] | None = None
        # the backend's kernels for outputs of one shape and dtype (Backend.fused_dense_activation),
        # asked for once per batch shape; None where it has none for them
        self._kernels: Any = None
        self._kernels_for: tuple[Any, ...] = ()

    @staticmethod
    def at(layers: list[Module], i: int) -> DenseActivation | None:
        """The fused step starting at layers[i], or None when no Dense -> activation starts there."""
        if type(layers[i]) is not Dense or i + 1 >= len(layers) or type(layers[i + 1]) not in KINDS:
            return None
        return DenseActivation(layers[i : i + 2])

    def forward(self, x: Array) -> Array:
        """(N, in_features) -> (N, out_features)."""
        dense = self.dense
        z = dense._product(x)
        bias = dense.bias.data if dense.bias is not None else None
        if (z.shape, z.dtype) != self._kernels_for:
            self._kernels = dense.backend.fused_dense_activation(self.kind, z.shape, z.dtype)
            self._kernels_for = (z.shape, z.dtype)
        kernels = self._kernels
        y = kernels.activate(z, bias) if kernels is not None else None
        if y is None:
            y = dense.backend.fused_bias_activation(z, bias, self.kind)
        if y is None:  # the layers' own bodies: the bias, then the activation module
            if bias is not None:
                z += bias
            self._y = None
            return self.act.forward(z)
        self._y, self._out_shape = y, tuple(y.shape)
        return y

    def backward(self, grad_out: Array) -> Array | None:
        """(N, out_features) -> (N, in_features) (None when the Dense skips its input gradient);
        accumulates the Dense's gradients."""
        dense, act = self.dense, self.act
        if self._y is None:  # forward ran the two layers
            return dense.backward(act.backward(grad_out))
        # named after the activation: the layer whose output the gradient is of
        y = check_grad(act, grad_out, self._out_shape, self._y)
        kernels, bias = self._kernels, dense.bias
        if kernels is not None and kernels.takes(grad_out):
            # a cleared bias gradient takes the sums straight from the kernel: no array, no copy
            written = bias.grad_to_overwrite() if bias is not None else None
            gz, sums = kernels.grad(grad_out, y, written)
            if written is None:
                return dense._gradients(dense._x, gz, sums)
            if sums is not written:  # a gradient array the kernel does not write into
                written[...] = sums
            return dense._gradients(dense._x, gz, None, bias_written=True)
        fused = dense.backend.fused_activation_grad(grad_out, y, self.kind, bias is not None)
        if fused is None:
            gz = _GRADS[self.kind](dense.xp, grad_out, y)
            return dense._backward(gz, None)
        return dense._backward(*fused)


_GRADS = {
    "relu": relu_grad,
    "sigmoid": lambda xp, g, y: sigmoid_grad(g, y),
    "tanh": lambda xp, g, y: tanh_grad(g, y),
}

__all__ = ["DenseActivation"]
