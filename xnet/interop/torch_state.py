"""xnet <-> PyTorch state dicts: the same dotted names ("0.weight"), the layouts converted per layer type.

TORCH_LAYOUTS holds the layer types whose arrays differ from PyTorch's; any other type keeps its
arrays as they are (Conv2D's weight is (C_out, C_in/groups, kh, kw) in both, LayerNorm's weight and
bias have normalized_shape in both). Containers name their children as PyTorch does: a residual
block's "3.body.0.weight" and "3.shortcut.1.running_mean" are the attributes of a torch module
holding `body` and `shortcut` nn.Sequentials. Adding a type is one entry. PyTorch itself is
imported only to make or save tensors; reading takes tensors or arrays. A lazy layer not built
yet has no arrays: it is refused both ways.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xnet.atomic import atomic_write_bytes
from xnet.errors import XnetError
from xnet.nn.batchnorm import BatchNorm1D, BatchNorm2D
from xnet.nn.dense import Dense
from xnet.nn.lazy import require_built
from xnet.nn.module import Module

SHOWN = 5  # mismatches listed in an error; the rest are counted


@dataclass(frozen=True)
class TorchLayout:
    """How one layer type's arrays differ from its PyTorch twin's."""

    to_torch: dict[str, Callable[[np.ndarray], np.ndarray]] = field(default_factory=dict)  # by xnet array name
    from_torch: dict[str, Callable[[np.ndarray], np.ndarray]] = field(default_factory=dict)
    torch_only: dict[str, Callable[[Module], np.ndarray]] = field(default_factory=dict)  # written, ignored on read


def _transpose(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.T)


# torch counts the batches batch norm trained on; only momentum=None reads it, which xnet does not have
_BN = TorchLayout(torch_only={"num_batches_tracked": lambda m: np.array(0, np.int64)})
TORCH_LAYOUTS: dict[type, TorchLayout] = {
    Dense: TorchLayout({"weight": _transpose}, {"weight": _transpose}),  # xnet (in, out), nn.Linear (out, in)
    BatchNorm1D: _BN,
    BatchNorm2D: _BN,
}


class StateDictMismatch(XnetError, ValueError):
    """A state dict whose names or shapes do not fit the model."""


def _named_modules(module: Module, prefix: str = "") -> Iterator[tuple[str, Module]]:
    yield prefix, module
    for name, child in module.children():
        yield from _named_modules(child, f"{prefix}{name}.")


def _convert(model: Module, state: dict[str, np.ndarray], direction: str) -> dict[str, np.ndarray]:
    """`state` with the arrays of every listed layer type converted ("to_torch" or "from_torch")."""
    out = dict(state)
    for prefix, module in _named_modules(model):
        layout = TORCH_LAYOUTS.get(type(module))
        for name, fn in getattr(layout, direction, {}).items():
            if prefix + name in out:
                out[prefix + name] = fn(out[prefix + name])
    return out


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise XnetError("PyTorch is not installed: pip install torch (needed only to make torch tensors)") from None
    return torch


def to_torch_state_dict(model: Module, tensors: bool = True) -> dict[str, Any]:
    """`model`'s parameters and buffers under PyTorch's names and layouts, for `torch_model.load_state_dict`.

    tensors=False gives NumPy arrays and needs no PyTorch. Batch norms get PyTorch's num_batches_tracked (0).
    """
    require_built(model, "make a PyTorch state dict", XnetError)
    state = _convert(model, model.state_dict(), "to_torch")
    for prefix, module in _named_modules(model):
        layout = TORCH_LAYOUTS.get(type(module))
        for name, make in getattr(layout, "torch_only", {}).items():
            state[prefix + name] = make(module)
    if not tensors:
        return state
    torch = _torch()
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


def _host(name: str, value: Any) -> np.ndarray:
    """A torch tensor (any device, with or without grad) or array as a NumPy array."""
    try:
        if hasattr(value, "detach") and hasattr(value, "cpu"):
            value = value.detach().cpu().numpy()  # bfloat16 has no NumPy type: refused here
        return np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as e:
        what = type(value).__name__
        raise StateDictMismatch(f"state dict entry {name!r} ({what}) cannot become a NumPy array: {e}") from None


def _listed(problems: list[str]) -> str:
    more = len(problems) - SHOWN
    return "; ".join(problems[:SHOWN]) + (f"; and {more} more" if more > 0 else "")


def from_torch_state_dict(model: Module, state_dict: Mapping[str, Any]) -> Module:
    """Load a PyTorch state dict (tensors or arrays, PyTorch's layouts) into `model`; returns `model`.

    Names and shapes must all fit: StateDictMismatch lists the first mismatches and loads nothing.
    """
    if not isinstance(state_dict, Mapping):
        what = type(state_dict).__name__
        raise StateDictMismatch(f"expected a state dict (a mapping of names to tensors), got a {what}")
    require_built(model, "load a PyTorch state dict", XnetError)
    expected = to_torch_state_dict(model, tensors=False)
    optional = {
        prefix + name
        for prefix, module in _named_modules(model)
        for name in getattr(TORCH_LAYOUTS.get(type(module)), "torch_only", {})
    }
    given = {str(k): _host(str(k), v) for k, v in state_dict.items()}
    problems = [f"{k}: missing" for k in expected if k not in given and k not in optional]
    problems += [f"{k}: not in this model" for k in given if k not in expected]
    checked = [k for k in expected if k in given and k not in optional]
    problems += [
        f"{k}: expected shape {tuple(expected[k].shape)}, got {tuple(given[k].shape)}"
        for k in checked
        if given[k].shape != expected[k].shape
    ]
    problems += [f"{k}: holds {given[k].dtype} values, expected numbers"
                 for k in checked if given[k].dtype.kind not in "fiu"]
    if problems:
        raise StateDictMismatch(f"the state dict does not fit this {type(model).__name__}: {_listed(problems)}")
    own = {k: v for k, v in given.items() if k not in optional}
    model.load_state_dict(_convert(model, own, "from_torch"))
    return model


def save_torch_state_dict(model: Module, path: str | Path) -> Path:
    """Write to_torch_state_dict(model) with torch.save to `path`, atomically."""
    torch = _torch()
    buf = io.BytesIO()
    torch.save(to_torch_state_dict(model), buf)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path
