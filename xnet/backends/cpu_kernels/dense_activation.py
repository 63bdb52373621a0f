"""A Dense layer's activation and its gradient on batches of one shape, with every choice made once.

An MLP's step at batch 16 is some forty small calls, each a few microseconds of arithmetic; the
checks that table.bias_activation and table.activation_grad make on every call (dtypes, layout,
first-use verdict, whether to split) cost as much again. The fused Dense -> activation step
(xnet/nn/fused_dense.py) asks NumpyBackend.fused_dense_activation once per batch shape for a
DenseActivationKernels and calls it from then on; what is left to check per call is what the
shape does not fix: the arrays' dtype and layout, read off a few attributes.

Only passes small enough to run whole on the calling thread come here (those table.py never
splits); larger ones keep table.py's route, which shares them over the threads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xnet.backends.cpu_kernels import probes, rows
from xnet.backends.fast_paths import FLOATS

ACTIVATION_KINDS = {"relu": 0, "sigmoid": 1, "tanh": 2}  # rows.activation_grad's codes


def activate(z: np.ndarray, bias: np.ndarray | None, kind: str, half: Any = 0.5, one: Any = 1.0) -> None:
    """act(z + bias) written into z (N, K), as the layers compute it; ReLU is one compiled pass, Sigmoid
    and Tanh NumPy's own vectorised ufuncs in place (Numba's scalar tanh would be slower).

    `half` and `one` are 0.5 and 1 as Python floats or as 0-d arrays of z's dtype: the same values in
    the same arithmetic, and a ufunc takes a 0-d array ~0.2 us faster than a Python float it must convert."""
    if kind == "relu":
        b = bias if bias is not None else np.empty((0,), z.dtype)
        rows.bias_relu(z, b, bias is not None, z.dtype.type(1), 0, z.shape[0])
        return
    if bias is not None:
        z += bias
    if kind == "sigmoid":  # 0.5 * (1 + tanh(0.5 z)): Sigmoid.forward's form, which never overflows
        np.multiply(z, half, out=z)
        np.tanh(z, out=z)
        np.add(z, one, out=z)
        np.multiply(z, half, out=z)
    else:
        np.tanh(z, out=z)


class DenseActivationKernels:
    """act(z + b) and its gradient for outputs z (N, K) of one dtype, N and K fixed; made by `make`."""

    def __init__(self, kind: str, shape: tuple[int, int], dtype: np.dtype):
        self.kind, self.code, self.shape, self.dtype = kind, ACTIVATION_KINDS[kind], shape, dtype
        self._one = dtype.type(1)
        self._constants = (np.array(0.5, dtype), np.array(1.0, dtype))  # activate's `half` and `one`
        self._bias: np.ndarray | None = None  # the last bias checked (a parameter: the same array every step)
        self._sums: np.ndarray | None = None  # the last array `grad` wrote sums into (a bias gradient)

    def activate(self, z: np.ndarray, bias: np.ndarray | None) -> np.ndarray | None:
        """z (N, K) -> act(z + bias), written into z; None (z untouched) for arrays the kernels do not take."""
        if z.dtype != self.dtype or z.shape != self.shape:
            return None
        if bias is not None and bias is not self._bias:
            if type(bias) is not np.ndarray or bias.dtype != self.dtype or not bias.flags.c_contiguous:
                return None
            self._bias = bias
        activate(z, bias, self.kind, *self._constants)
        return z

    def takes(self, g: Any) -> bool:
        """Whether `grad` takes the gradient `g`: NumPy, this dtype, C-contiguous, the outputs' shape."""
        return type(g) is np.ndarray and g.dtype == self.dtype and g.flags.c_contiguous and g.shape == self.shape

    def grad(self, g: np.ndarray, y: np.ndarray, sums: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Gradient g (N, K) at the output y (N, K) of `activate`, a g that `takes` took -> (gradient at
        its input (N, K), its sums over N (K,)); the sums are written into `sums` when given and the
        kernel takes it (a cleared bias gradient: the same array every step), else a new array."""
        gz = np.empty(self.shape, self.dtype)
        if sums is not self._sums:
            fits = type(sums) is np.ndarray and sums.dtype == self.dtype and sums.flags.c_contiguous
            if fits and sums.shape == self.shape[1:]:
                self._sums = sums
            else:
                sums = None
        if sums is None:
            sums = np.empty(self.shape[1:], self.dtype)
        rows.activation_grad(g, y, self.code, self._one, gz, sums, 0, self.shape[0])
        return gz, sums


def make(kind: str, shape: tuple[int, int], dtype: np.dtype, max_bytes: int) -> DenseActivationKernels | None:
    """The kernels for activation `kind` on (N, K) outputs of `dtype`, when every pass over them (up to three
    arrays of that size) is at most `max_bytes`; else None (and None where a first-use check failed)."""
    if kind not in ACTIVATION_KINDS or len(shape) != 2 or not shape[0] or dtype not in FLOATS:
        return None
    if 3 * shape[0] * shape[1] * dtype.itemsize > max_bytes:
        return None
    if kind == "relu" and not probes.ok("bias_relu", dtype):
        return None
    if not probes.ok("activation_grad", dtype):
        return None
    return DenseActivationKernels(kind, shape, dtype)
