"""Rebuild a trained model from a checkpoint, on any backend (GPU checkpoints load on CPUs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xnet.backends import Backend, get_backend
from xnet.config import RunConfig
from xnet.nn.module import Module, build_on
from xnet.train.checkpoint import load_checkpoint


@dataclass
class Restored:
    """A model rebuilt from a checkpoint, with what the run recorded about its data."""

    model: Module
    config: RunConfig
    dataset: dict[str, Any]
    backend: Backend
    state: dict[str, Any]


def restore(path: str | Path, device: str = "cpu") -> Restored:
    """Load `path` and rebuild its model with its weights on `device`, in evaluation mode."""
    from xnet.nn.registry import model_from_config

    state = load_checkpoint(path)
    cfg = RunConfig(**state["config"])
    backend = get_backend(device, seed=cfg.seed)
    with build_on(backend, cfg.dtype):
        model = model_from_config(state["model_spec"], "checkpoint model")
    model.load_state_dict(state["trainer"]["model"])
    model.eval()
    return Restored(model, cfg, state["dataset"], backend, state)
