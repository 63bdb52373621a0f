"""Layers by type name, so config files and checkpoints can describe any Sequential network."""

from __future__ import annotations

from typing import Any

from xnet.nn.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from xnet.nn.batchnorm import BatchNorm1D, BatchNorm2D
from xnet.nn.conv import Conv2D
from xnet.nn.dense import Dense
from xnet.nn.dropout import Dropout
from xnet.nn.module import Module, accepted_arguments
from xnet.nn.pooling import AvgPool2D, MaxPool2D
from xnet.nn.sequential import Sequential
from xnet.nn.shape import Flatten, Reshape

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
}


def layer_from_config(table: dict[str, Any], where: str = "layer") -> Module:
    """Build one layer from {"type": name, **arguments}; errors name `where` and the problem."""
    if not isinstance(table, dict) or "type" not in table:
        raise ValueError(f"{where}: needs a 'type' (one of {', '.join(sorted(LAYER_TYPES))})")
    kind = str(table["type"]).lower()
    if kind == "sequential":
        return model_from_config(table, where)
    cls = LAYER_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"{where}: unknown layer type {kind!r} (valid: {', '.join(sorted(LAYER_TYPES))})")
    args = {k: v for k, v in table.items() if k != "type"}
    valid = accepted_arguments(cls)
    for key in args:
        if key not in valid:
            raise ValueError(
                f"{where}: unknown argument {key!r} for layer type {kind!r} (valid: {', '.join(valid) or 'none'})"
            )
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in args.items()})
    except TypeError as e:
        raise ValueError(f"{where}: {e}") from None


def model_from_config(config: dict[str, Any], where: str = "model") -> Sequential:
    """Rebuild a Sequential from its `config()` ({"type": "sequential", "layers": [...]})."""
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"{where}: 'layers' must be a non-empty list of layer tables")
    return Sequential(*[layer_from_config(t, f"{where}.layers[{i}]") for i, t in enumerate(layers)])
