"""Named model presets (mlp, cnn, lenet5 and the reference configurations) built as Sequentials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xnet.nn.activations import get_activation
from xnet.nn.batchnorm import BatchNorm1D, BatchNorm2D
from xnet.nn.conv import Conv2D
from xnet.nn.dense import Dense
from xnet.nn.dropout import Dropout
from xnet.nn.module import Module
from xnet.nn.pooling import AvgPool2D, MaxPool2D
from xnet.nn.sequential import Sequential
from xnet.nn.shape import Flatten

PRESETS = {
    "mlp": "Flatten, then Dense(hidden[i]) [+ BatchNorm1D] + activation [+ Dropout] per hidden size, "
    "then Dense(classes)",
    "cnn": "conv 32 3x3 same [+BN], act, maxpool 2 / conv 64 3x3 same [+BN], act, maxpool 2 / "
    "dense 128, act [+dropout] / dense classes",
    "lenet5": "LeCun's LeNet-5: conv 6 5x5 pad 2, act, avgpool 2 / conv 16 5x5, act, avgpool 2 / "
    "dense 120, act / dense 84, act / dense classes",
    "small-cnn": "benchmark workload 3: conv 8 3x3 pad 1, relu, maxpool 2 / conv 16 3x3 pad 1, relu, "
    "maxpool 2 / dense 128, relu / dense classes",
    "bn-cnn": "benchmark workload 4: conv 32 3x3 pad 1, BN, relu, maxpool 2 / conv 64 3x3 pad 1, BN, "
    "relu, maxpool 2 / dense 128, relu, dropout 0.25 / dense classes",
}


def default_init(activation: str) -> str:
    """Kaiming for ReLU-family stacks (GELU, SiLU and ELU are ReLU-like), Xavier otherwise."""
    return "kaiming_uniform" if activation in ("relu", "leaky_relu", "gelu", "silu", "elu") else "xavier_uniform"


# the anchors' recipes define every layer of a model, the output layer too (the others keep its default)
WHOLE_MODEL_INITS = ("torch", "keras")


def _output_init(init: str, default: str) -> str:
    """The output layer's initialiser: `init` for the anchors' recipes, else the layer's `default`."""
    return init if init in WHOLE_MODEL_INITS else default


def _size(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def build_mlp(
    input_shape: Sequence[int],
    outputs: int,
    hidden: Sequence[int] = (256, 128),
    activation: str = "relu",
    init: str | None = None,
    dropout: float = 0.0,
    batch_norm: bool = False,
    activation_args: dict[str, Any] | None = None,
    bn_args: dict[str, Any] | None = None,
    bias_init: str | None = None,
) -> Sequential:
    """MLP for inputs of `input_shape` (per sample) -> (N, outputs) scores.

    `activation_args` go to every activation (LeakyReLU's alpha), `bn_args` to every batch norm (eps, momentum).
    """
    init = init or default_init(activation)
    layers: list[Module] = [Flatten()]
    width = _size(input_shape)
    for h in hidden:
        layers.append(Dense(width, h, init=init, bias_init=bias_init))
        if batch_norm:
            layers.append(BatchNorm1D(h, **(bn_args or {})))
        layers.append(get_activation(activation, **(activation_args or {})))
        if dropout:
            layers.append(Dropout(dropout))
        width = h
    last = _output_init(init, init if activation != "relu" else "xavier_uniform")
    layers.append(Dense(width, outputs, init=last, bias_init=bias_init))
    return Sequential(*layers)


def _check_image_size(name: str, input_shape: Sequence[int], least: int) -> None:
    """Images too small for a preset's poolings would leave no pixels for its dense layer."""
    h, w = input_shape[-2:]
    if h < least or w < least:
        raise ValueError(
            f"{name}: the images are {h}x{w}, too small for the {name} preset (it needs at least {least}x{least})"
        )


def _conv_block(
    c_in: int, c_out: int, activation: str, init: str, batch_norm: bool, activation_args: dict, bn_args: dict,
    bias_init: str | None = None,
) -> list[Module]:
    conv = Conv2D(c_in, c_out, 3, padding="same", init=init, bias=not batch_norm, bias_init=bias_init)
    block: list[Module] = [conv]
    if batch_norm:
        block.append(BatchNorm2D(c_out, **bn_args))
    return [*block, get_activation(activation, **activation_args), MaxPool2D(2)]


def build_cnn(
    input_shape: Sequence[int],
    outputs: int,
    channels: Sequence[int] = (32, 64),
    dense: int = 128,
    activation: str = "relu",
    init: str | None = None,
    dropout: float = 0.0,
    batch_norm: bool = False,
    name: str = "cnn",
    activation_args: dict[str, Any] | None = None,
    bn_args: dict[str, Any] | None = None,
    bias_init: str | None = None,
) -> Sequential:
    """Conv 3x3 same-padding blocks with 2x2 max pooling, then dense layers: (N, C, H, W) -> (N, outputs)."""
    if len(input_shape) != 3:
        raise ValueError(f"{name}: needs image inputs (C, H, W), the dataset gives {tuple(input_shape)}")
    _check_image_size(name, input_shape, 2 ** len(channels))  # each block halves H and W
    init = init or default_init(activation)
    activation_args, bn_args = activation_args or {}, bn_args or {}
    c, h, w = input_shape
    layers: list[Module] = []
    for c_out in channels:
        layers += _conv_block(c, c_out, activation, init, batch_norm, activation_args, bn_args, bias_init)
        c, h, w = c_out, h // 2, w // 2
    layers += [Flatten(), Dense(c * h * w, dense, init=init, bias_init=bias_init),
               get_activation(activation, **activation_args)]  # fmt: skip
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(dense, outputs, init=_output_init(init, "xavier_uniform"), bias_init=bias_init))
    return Sequential(*layers)


def build_lenet5(
    input_shape: Sequence[int],
    outputs: int,
    activation: str = "relu",
    init: str | None = None,
    activation_args: dict[str, Any] | None = None,
    bias_init: str | None = None,
) -> Sequential:
    """LeNet-5 for 28x28 images (the first convolution pads by 2, as for 32x32 inputs)."""
    if len(input_shape) != 3:
        raise ValueError(f"lenet5: needs image inputs (C, H, W), the dataset gives {tuple(input_shape)}")
    # pad 2 keeps H, pool 2, conv 5 (-4), pool 2 must leave at least one pixel: H >= 12
    _check_image_size("lenet5", input_shape, 12)
    init = init or default_init(activation)
    c, h, w = input_shape
    h2, w2 = ((h // 2) - 4) // 2, ((w // 2) - 4) // 2
    act = lambda: get_activation(activation, **(activation_args or {}))  # noqa: E731
    b = bias_init
    return Sequential(
        Conv2D(c, 6, 5, padding=2, init=init, bias_init=b), act(), AvgPool2D(2),
        Conv2D(6, 16, 5, init=init, bias_init=b), act(), AvgPool2D(2),
        Flatten(), Dense(16 * h2 * w2, 120, init=init, bias_init=b), act(),
        Dense(120, 84, init=init, bias_init=b), act(), Dense(84, outputs, init=_output_init(init, "xavier_uniform"),
                                                             bias_init=b),
    )  # fmt: skip


def build_preset(
    name: str,
    input_shape: Sequence[int],
    outputs: int,
    hidden: Sequence[int] = (256, 128),
    activation: str = "relu",
    init: str | None = None,
    dropout: float = 0.0,
    batch_norm: bool = False,
    activation_args: dict[str, Any] | None = None,
    bn_args: dict[str, Any] | None = None,
    bias_init: str | None = None,
) -> Sequential:
    """The preset `name` (see PRESETS) for `input_shape` -> `outputs`; the args dicts as for build_mlp."""
    act, bn = activation_args or {}, bn_args or {}
    if name == "mlp":
        return build_mlp(input_shape, outputs, hidden, activation, init, dropout, batch_norm, act, bn, bias_init)
    if name == "cnn":
        return build_cnn(
            input_shape, outputs, (32, 64), 128, activation, init, dropout, batch_norm, "cnn", act, bn, bias_init
        )
    if name == "lenet5":
        return build_lenet5(input_shape, outputs, activation, init, act, bias_init)
    if name == "small-cnn":
        return build_cnn(input_shape, outputs, (8, 16), 128, "relu", init, 0.0, False, "small-cnn", bias_init=bias_init)
    if name == "bn-cnn":
        return build_cnn(
            input_shape, outputs, (32, 64), 128, "relu", init, 0.25, True, "bn-cnn", bn_args=bn, bias_init=bias_init
        )
    raise ValueError(f"unknown model {name!r}; expected one of {', '.join(PRESETS)}")
