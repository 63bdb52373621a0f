"""Dense (Linear): y = x W + b."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xnet.backends import Array
from xnet.nn.checks import check_grad
from xnet.nn.init import default_bias_init, initialize
from xnet.nn.module import Module, set_cache
from xnet.nn.parameter import Parameter
from xnet.nn.shapes import check_given, sample_size


class Dense(Module):
    """Fully connected layer: (N, in_features) -> (N, out_features), W of shape (in, out).

    `needs_input_grad = False` (set by a Sequential whose input is data) makes backward skip
    the input gradient, a third of the layer's work, and return None.
    """

    needs_input_grad = True
    sample_rank = 1  # its samples are flat: (in_features,)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str | Callable = "xavier_uniform",
        bias_init: str | Callable | None = None,
    ):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"Dense: {name} must be a positive int, got {v!r}")
        self.in_features, self.out_features = in_features, out_features
        bias_init = default_bias_init(init) if bias_init is None else bias_init  # zeros unless init="torch"
        self.init, self.bias_init = init, bias_init
        fans = (in_features, out_features)
        w = initialize(init, self.backend, fans, *fans, self.dtype)
        self.weight = Parameter(w, "weight")
        self.bias = None
        if bias:
            b = initialize(bias_init, self.backend, (out_features,), *fans, self.dtype)
            self.bias = Parameter(b, "bias", regularize=False)
        self._x: Array | None = None
        self._out_shape: tuple[int, ...] | None = None  # checked against backward's gradient
        # the backend's product for batches of `_matmul_rows` rows (Backend.matmul_for), picked once
        # per batch size: the forward's and both backward products have the same size
        self._matmul_rows, self._matmul = -1, self.backend.matmul

    def _on_backend_change(self) -> None:
        self._matmul_rows, self._matmul = -1, self.backend.matmul  # picked again on the new backend

    @property
    def _name(self) -> str:
        """How errors name this layer (a property: Module.train() scans the instance's attributes)."""
        return f"Dense({self.in_features}, {self.out_features})"

    def check_input_shape(self, shape: tuple[int, ...], where: str) -> None:
        """ValueError unless `shape` is (in_features,)."""
        check_given("in_features", self.in_features, sample_size(shape, self.sample_rank, where), shape, where)

    def forward(self, x: Array) -> Array:
        """(N, in_features) -> (N, out_features)."""
        y = self._product(x)
        if self.bias is not None:
            y += self.bias.data
        return y

    def _product(self, x: Array) -> Array:
        """(N, in_features) -> x @ W (N, out_features), x kept for backward; the bias is the caller's
        to add (forward, or the fused step with an activation, fused_dense.py)."""
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"{self._name}: expected input (N, {self.in_features}), got shape {tuple(x.shape)}"
            )
        set_cache(self, "_x", x)
        if x.shape[0] != self._matmul_rows:
            self._matmul = self.backend.matmul_for(x.shape[0], self.in_features, self.out_features)
            self._matmul_rows = x.shape[0]
        y = self._matmul(x, self.weight.data)
        set_cache(self, "_out_shape", y.shape)
        return y

    def backward(self, grad_out: Array) -> Array | None:
        """(N, out_features) -> (N, in_features); accumulates dW = x^T g and db = sum_N g."""
        return self._backward(grad_out, None)

    def _backward(self, grad_out: Array, bias_grad: Array | None) -> Array | None:
        """backward, given db = sum_N g (out_features,) where the caller already has it (else None)."""
        x = check_grad(self, grad_out, self._out_shape, self._x)
        return self._gradients(x, grad_out, bias_grad)

    def _gradients(
        self, x: Array, grad_out: Array, bias_grad: Array | None, bias_written: bool = False
    ) -> Array | None:
        """dW += x^T g, db += bias_grad (sum_N g when None; nothing when `bias_written`: the caller wrote
        it into the cleared gradient) for a checked g; returns g W^T, or None without input gradient."""
        matmul = self._matmul  # forward's pick, for its batch size
        dw = self.weight.grad_to_overwrite()  # after zero_grad: the product written straight into it
        if dw is not None:
            matmul(x.T, grad_out, out=dw)
        else:
            self.weight.grad += matmul(x.T, grad_out)
        if self.bias is not None and not bias_written:
            self.bias.add_grad(self.xp.sum(grad_out, axis=0) if bias_grad is None else bias_grad)
        if not self.needs_input_grad:
            return None
        return matmul(grad_out, self.weight.data.T)

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "type": "dense",
            "in_features": self.in_features,
            "out_features": self.out_features,
        }
        if self.bias is None:
            cfg["bias"] = False
        # a callable initialiser cannot be written to JSON; it only matters before training
        if isinstance(self.init, str) and self.init != "xavier_uniform":
            cfg["init"] = self.init
        if self.bias is not None and isinstance(self.bias_init, str) and self.bias_init != "zeros":
            cfg["bias_init"] = self.bias_init
        return cfg


Linear = Dense
