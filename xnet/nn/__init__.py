"""Layers and containers: `xnet.nn.Sequential(xnet.nn.Dense(784, 10), ...)`."""

from xnet.nn.activations import ACTIVATIONS, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh, get_activation
from xnet.nn.adaptive_pool import AdaptiveAvgPool2D, GlobalAvgPool2D
from xnet.nn.batchnorm import BatchNorm1D, BatchNorm2D
from xnet.nn.conv import Conv2D
from xnet.nn.dense import Dense, Linear
from xnet.nn.dropout import Dropout
from xnet.nn.init import INITIALIZERS, initialize
from xnet.nn.layernorm import LayerNorm
from xnet.nn.lazy import LazyConv2D, LazyDense
from xnet.nn.module import Module, build_on, current_build
from xnet.nn.parameter import Parameter
from xnet.nn.pooling import AvgPool2D, MaxPool2D
from xnet.nn.registry import LAYER_TYPES, layer_from_config, model_from_config
from xnet.nn.residual import Residual
from xnet.nn.sequential import Sequential
from xnet.nn.shape import Flatten, Reshape
from xnet.nn.smooth import ELU, GELU, SiLU, Softplus

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LAYER_TYPES",
    "AdaptiveAvgPool2D",
    "AvgPool2D",
    "BatchNorm1D",
    "BatchNorm2D",
    "Conv2D",
    "Dense",
    "Dropout",
    "ELU",
    "Flatten",
    "GELU",
    "GlobalAvgPool2D",
    "Identity",
    "LayerNorm",
    "LazyConv2D",
    "LazyDense",
    "LeakyReLU",
    "Linear",
    "MaxPool2D",
    "Module",
    "Parameter",
    "ReLU",
    "Reshape",
    "Residual",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "build_on",
    "current_build",
    "get_activation",
    "initialize",
    "layer_from_config",
    "model_from_config",
]
