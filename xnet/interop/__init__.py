"""Weights and arrays across libraries: PyTorch state dicts both ways; DLPack arrays in (xnet.asarray)."""

from xnet.interop.arrays import asarray
from xnet.interop.torch_state import (
    TORCH_LAYOUTS,
    StateDictMismatch,
    TorchLayout,
    from_torch_state_dict,
    save_torch_state_dict,
    to_torch_state_dict,
)

__all__ = [
    "TORCH_LAYOUTS",
    "StateDictMismatch",
    "TorchLayout",
    "asarray",
    "from_torch_state_dict",
    "save_torch_state_dict",
    "to_torch_state_dict",
]
