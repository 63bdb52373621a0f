"""Per-sample shapes of one layer for shape inference (lazy.py): its output shape and the errors it gives."""

from __future__ import annotations

from typing import Any

import numpy as np


def where_of(layer: Any, name: str) -> str:
    """How errors name a layer: 'layer 3.body.0 (Conv2D)' (its parameter path and its type)."""
    return f"layer {name or '0'} ({getattr(layer, '_name', None) or type(layer).__name__})"


def leaf_shape(layer: Any, shape: tuple[int, ...], where: str) -> tuple[int, ...]:
    """Per-sample output shape of one Module: a zero sample through it, in evaluation mode."""
    training = layer.training
    layer.eval()
    try:
        out = layer.forward(layer.backend.asarray(np.zeros((1, *shape)), layer.dtype))
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    finally:
        layer.train(training)
    return tuple(int(d) for d in out.shape[1:])


def check_given(key: str, given: int, expected: int, shape: tuple[int, ...], where: str) -> None:
    """A given in_features / in_channels must be the size the layer's input has."""
    if given != expected:
        raise ValueError(
            f"{where}: {key} = {given} was given, but its input has {expected} (input shape {shape}); "
            f"fix {key} or leave it out to take it from the data"
        )


def sample_size(shape: tuple[int, ...], rank: int, where: str) -> int:
    """The in_features (rank 1) / in_channels (rank 3) a Dense / Conv2D takes from a per-sample `shape`."""
    if rank == 1 and len(shape) != 1:
        raise ValueError(f"{where}: needs flat samples (features,), its input is {shape}; add a flatten layer first")
    if rank == 3 and len(shape) != 3:
        raise ValueError(f"{where}: needs image samples (C, H, W), its input is {shape}")
    return shape[0]
