"""Layers by type name, so config files and checkpoints can describe any Sequential network."""

from __future__ import annotations

from typing import Any

from xnet.nn.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from xnet.nn.adaptive_pool import AdaptiveAvgPool2D, GlobalAvgPool2D
from xnet.nn.batchnorm import BatchNorm1D, BatchNorm2D
from xnet.nn.conv import Conv2D
from xnet.nn.dense import Dense
from xnet.nn.dropout import Dropout
from xnet.nn.layernorm import LayerNorm
from xnet.nn.lazy import LazyConv2D, LazyDense
from xnet.nn.module import Module, accepted_arguments
from xnet.nn.pooling import AvgPool2D, MaxPool2D
from xnet.nn.residual import Residual
from xnet.nn.sequential import Sequential
from xnet.nn.shape import Flatten, Reshape
from xnet.nn.smooth import ELU, GELU, SiLU, Softplus

LAYER_TYPES: dict[str, type[Module]] = {
    "dense": Dense,
    "linear": Dense,
    "conv2d": Conv2D,
    "maxpool2d": MaxPool2D,
    "avgpool2d": AvgPool2D,
    "batchnorm1d": BatchNorm1D,
    "batchnorm2d": BatchNorm2D,
    "dropout": Dropout,
    "flatten": Flatten,
    "reshape": Reshape,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "leakyrelu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softmax": Softmax,
    "identity": Identity,
    "gelu": GELU,
    "silu": SiLU,
    "elu": ELU,
    "softplus": Softplus,
    "layernorm": LayerNorm,
    "globalavgpool2d": GlobalAvgPool2D,
    "adaptiveavgpool2d": AdaptiveAvgPool2D,
}
# "residual" and "sequential" hold layer tables of their own (built by layer_from_config);
# a dense / conv2d table without in_features / in_channels is lazy: its size comes from the data
_NESTED = ("residual", "sequential")
_LAZY: dict[type[Module], tuple[str, type[Module]]] = {
    Dense: ("in_features", LazyDense),
    Conv2D: ("in_channels", LazyConv2D),
}


def layer_from_config(table: dict[str, Any], where: str = "layer") -> Module:
    """Build one layer from {"type": name, **arguments}; errors name `where` and the problem."""
    if not isinstance(table, dict) or "type" not in table:
        raise ValueError(f"{where}: needs a 'type' (one of {', '.join(sorted([*LAYER_TYPES, *_NESTED]))})")
    kind = str(table["type"]).lower()
    if kind == "sequential":
        return model_from_config(table, where)
    if kind == "residual":
        return _residual_from_config(table, where)
    cls = LAYER_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"{where}: unknown layer type {kind!r} (valid: {', '.join(sorted([*LAYER_TYPES, *_NESTED]))})")
    args = {k: v for k, v in table.items() if k != "type"}
    valid = accepted_arguments(cls)
    size, lazy = _LAZY.get(cls, ("", cls))
    if size and size not in table:
        cls = lazy
    for key in args:
        if key not in valid:
            raise ValueError(
                f"{where}: unknown argument {key!r} for layer type {kind!r} (valid: {', '.join(valid) or 'none'})"
            )
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in args.items()})
    except TypeError as e:
        raise ValueError(f"{where}: {e}") from None


def _layer_list(tables: Any, where: str, key: str = "layers") -> list[Module]:
    if not isinstance(tables, list) or not tables:
        raise ValueError(f"{where}: '{key}' must be a non-empty list of layer tables")
    return [layer_from_config(t, f"{where}.{key}[{i}]") for i, t in enumerate(tables)]


def _residual_from_config(table: dict[str, Any], where: str) -> Residual:
    """{"type": "residual", "layers": [...], "shortcut": [...] (absent: identity), "activation": name or table}."""
    extra = set(table) - {"type", "layers", "shortcut", "activation"}
    if extra:
        raise ValueError(
            f"{where}: unknown argument {sorted(extra)[0]!r} for layer type 'residual' "
            "(valid: layers, shortcut, activation)"
        )
    body = _layer_list(table.get("layers"), where)
    shortcut = _layer_list(table["shortcut"], where, "shortcut") if "shortcut" in table else None
    act = table.get("activation")
    if isinstance(act, dict):
        act = layer_from_config(act, f"{where}.activation")
    elif act is not None and not isinstance(act, str):
        raise ValueError(f"{where}: activation must be a name such as \"relu\" or a layer table, got {act!r}")
    try:
        return Residual(body, shortcut, act)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None


def model_from_config(
    config: dict[str, Any], where: str = "model", input_shape: tuple[int, ...] | None = None
) -> Sequential:
    """Rebuild a Sequential from its `config()` ({"type": "sequential", "layers": [...]}).

    With `input_shape` (per sample), sizes left out (in_features, in_channels) are taken from it
    and given ones checked (lazy.py); without, a lazy layer gets its size at its first forward.
    """
    model = Sequential(*_layer_list(config.get("layers"), where))
    if input_shape is not None:
        model.build(tuple(input_shape))
    return model
