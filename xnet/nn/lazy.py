"""Sizes taken from the data: LazyDense / LazyConv2D and `infer_shapes`, as Keras and PyTorch's Lazy layers.

A lazy layer is given everything but its input size; `infer_shapes(model, input_shape)` (which
`Sequential.build` and the TOML reader call) walks the model with the per-sample shape, turns
each lazy layer into the plain Dense / Conv2D it stands for, and checks every size that was
given. A lazy layer left unbuilt becomes its plain layer at its first forward, as in PyTorch;
an optimizer made before then does not see its parameters, so build first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xnet.nn.conv import Conv2D
from xnet.nn.dense import Dense
from xnet.nn.module import Module, build_on
from xnet.nn.shapes import sample_size


def is_lazy(layer: Module) -> bool:
    """Whether `layer` is a lazy layer not built yet: its class changes when it learns its input size."""
    return isinstance(layer, _Lazy)


class _Lazy(Module):
    """A layer whose input size is not known yet; `materialize(size)` makes it the plain layer."""

    becomes: type[Dense] | type[Conv2D] = Dense
    size_name = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.kwargs = kwargs

    def materialize(self, size: int) -> None:
        """Become `becomes(size, **kwargs)` in place, on the backend and dtype this layer was made on."""
        lazy, kwargs, training = type(self), self.kwargs, self.training
        becomes, size_name = lazy.becomes, lazy.size_name
        with build_on(self.backend, self.dtype):
            # as PyTorch's lazy modules: the same object becomes the plain layer, so containers,
            # parameter names and config() see a Dense / Conv2D from now on
            self.__class__ = becomes
            try:
                becomes.__init__(self, **{size_name: size}, **kwargs)
            except BaseException:
                self.__class__ = lazy  # a bad argument leaves the lazy layer as it was
                raise
        del self.kwargs
        self.training = training

    def check_input_shape(self, shape: tuple[int, ...], where: str) -> None:
        """Become the plain layer with the size `shape` gives (shape inference walks on through it)."""
        try:
            self.materialize(sample_size(shape, self.becomes.sample_rank, where))
        except (TypeError, ValueError) as e:
            raise ValueError(e if str(e).startswith(where) else f"{where}: {e}") from None

    def forward(self, x: Any) -> Any:
        """Materialize from x's shape, then run the plain layer's forward."""
        if x.ndim < 2:
            raise ValueError(f"{type(self).__name__}: expected input (N, ...), got shape {tuple(x.shape)}")
        self.materialize(int(x.shape[1]))
        return self.forward(x)

    def backward(self, grad_out: Any) -> Any:
        raise RuntimeError(f"{type(self).__name__}: backward called before forward")

    def config(self) -> dict[str, Any]:
        return {"type": self.becomes.__name__.lower(), **{k: v for k, v in self.kwargs.items() if v is not None}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{type(self).__name__}({args})"


class LazyDense(_Lazy):
    """Dense whose in_features comes from the data: (N, ?) -> (N, out_features)."""

    becomes, size_name = Dense, "in_features"

    def __init__(self, out_features: int, bias: bool = True, init: str | Callable = "xavier_uniform",
                 bias_init: str | Callable | None = None):  # fmt: skip
        super().__init__(out_features=out_features, bias=bias, init=init, bias_init=bias_init)


class LazyConv2D(_Lazy):
    """Conv2D whose in_channels comes from the data: (N, ?, H, W) -> (N, out_channels, Ho, Wo)."""

    becomes, size_name = Conv2D, "in_channels"

    def __init__(self, out_channels: int, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] = 1,
                 padding: int | tuple[int, int] | str = 0, dilation: int | tuple[int, int] = 1, groups: int = 1,
                 bias: bool = True, init: str | Callable = "kaiming_uniform",
                 bias_init: str | Callable | None = None):  # fmt: skip
        super().__init__(out_channels=out_channels, kernel_size=kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias, init=init, bias_init=bias_init)  # fmt: skip


def unbuilt_layers(module: Module, name: str = "") -> list[tuple[str, Module]]:
    """(dotted name such as "3.body.0", layer) of each lazy layer in `module` whose input size is not known yet."""
    if isinstance(module, _Lazy):
        return [(name, module)]  # name "" when `module` itself is the lazy layer
    found = []
    for child, sub in module.children():
        found += unbuilt_layers(sub, f"{name}.{child}" if name else child)
    return found


def require_built(module: Module, doing: str, error: type[Exception] = ValueError) -> None:
    """`error` naming the first lazy layer not built yet: `doing` ("export to ONNX") needs its weights."""
    unbuilt = unbuilt_layers(module)
    if unbuilt:
        name, layer = unbuilt[0]
        where = f"layer {name} ({type(layer).__name__})" if name else type(layer).__name__
        more = f" (and {len(unbuilt) - 1} more lazy layers)" if len(unbuilt) > 1 else ""
        raise error(
            f"cannot {doing}: {where}{more} is not built yet, so it has no weights; "
            "call model.build(input_shape) or run a batch through the model first"
        )


def infer_shapes(module: Module, input_shape: tuple[int, ...], name: str = "") -> tuple[int, ...]:
    """Build `module`'s lazy layers for per-sample `input_shape` and check given sizes; the output shape.

    Errors are ValueErrors naming the layer by its parameter path ("3.body.0"), the size its
    input has and the size it was given. Each module walks itself (Module.infer_shape).
    """
    return module.infer_shape(tuple(int(d) for d in input_shape), name)


__all__ = ["LazyConv2D", "LazyDense", "infer_shapes", "require_built", "unbuilt_layers"]
