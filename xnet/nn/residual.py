"""Residual: out = activation(body(x) + shortcut(x)), the block of ResNets."""

from __future__ import annotations

from typing import Any

from xnet.backends import Array
from xnet.nn.module import Module
from xnet.nn.sequential import Sequential


def _as_sequential(layers: Module | list[Module] | tuple[Module, ...], what: str) -> Sequential:
    if isinstance(layers, Sequential):
        return layers
    if isinstance(layers, Module):
        return Sequential(layers)
    if not isinstance(layers, (list, tuple)) or not layers:
        raise TypeError(f"Residual: {what} must be a Module or a non-empty list of them, got {layers!r}")
    return Sequential(*layers)


class Residual(Module):
    """activation(body(x) + shortcut(x)): (N, ...) -> the body's output shape.

    `body` is a Sequential (or a list of layers). `shortcut` None is the identity; otherwise a
    Sequential (or list), usually a 1x1 Conv2D with the body's stride and out_channels, maybe
    followed by a BatchNorm2D. `activation` is a name (as get_activation takes), a Module or None.
    Parameters are named body.i.* and shortcut.i.*, as PyTorch names a block's sub-modules.
    """

    def __init__(
        self,
        body: Module | list[Module],
        shortcut: Module | list[Module] | None = None,
        activation: str | Module | None = None,
    ):
        super().__init__()
        from xnet.nn.activations import get_activation

        self.body = _as_sequential(body, "body")
        self.shortcut = None if shortcut is None else _as_sequential(shortcut, "shortcut")
        if isinstance(activation, str):
            activation = get_activation(activation)
        if activation is not None and not isinstance(activation, Module):
            raise TypeError(f"Residual: activation must be a name, a Module or None, got {activation!r}")
        self.activation = activation
        self._out_shape: tuple[int, ...] | None = None

    def forward(self, x: Array) -> Array:
        """(N, ...) -> body(x) + shortcut(x), then the activation."""
        y = self.body.forward(x)
        s = x if self.shortcut is None else self.shortcut.forward(x)
        if tuple(y.shape) != tuple(s.shape):
            raise ValueError("Residual: " + mismatch(tuple(y.shape)[1:], tuple(s.shape)[1:], self.shortcut is None))
        z = y + s
        self._out_shape = tuple(z.shape)
        return z if self.activation is None else self.activation.forward(z)

    def backward(self, grad_out: Array) -> Array:
        """Gradient of the output -> of the input: through the body plus through the shortcut."""
        if self._out_shape is None:
            raise RuntimeError("Residual: backward called before forward")
        g = grad_out if self.activation is None else self.activation.backward(grad_out)
        through_body = self.body.backward(g)
        return through_body + (g if self.shortcut is None else self.shortcut.backward(g))

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"type": "residual", "layers": self.body.config()["layers"]}
        if self.shortcut is not None:
            cfg["shortcut"] = self.shortcut.config()["layers"]
        if self.activation is not None:
            act = self.activation.config()
            # a plain activation is its name; one with arguments (elu's alpha) its table
            cfg["activation"] = act["type"] if len(act) == 1 else act
        return cfg

    def __repr__(self) -> str:
        short = "identity" if self.shortcut is None else f"{len(self.shortcut)} layers"
        return f"Residual(body={len(self.body)} layers, shortcut={short}, activation={self.activation!r})"


def mismatch(body: tuple[int, ...], shortcut: tuple[int, ...], identity: bool) -> str:
    """The one-line error for a body whose output shape is not the shortcut's (per sample)."""
    what = "the identity shortcut (the block's input)" if identity else "the shortcut"
    hint = "; add a 1x1 conv shortcut with the body's out_channels and stride" if identity else ""
    return f"the body gives shape {body} per sample but {what} gives {shortcut}{hint}"


__all__ = ["Residual"]
