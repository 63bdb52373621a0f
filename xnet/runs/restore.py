"""Rebuild a trained model from a checkpoint, on any backend (GPU checkpoints load on CPUs)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xnet.backends import Backend, get_backend
from xnet.config import FIELDS, RunConfig, type_ok, validate
from xnet.data.prepare import Normalization
from xnet.errors import XnetError
from xnet.nn.module import Module, build_on
from xnet.train.checkpoint import load_checkpoint, plain, unusable

TASKS = ("classification", "regression")


@dataclass
class Restored:
    """A model rebuilt from a checkpoint, with what the run recorded about its data."""

    model: Module
    config: RunConfig
    dataset: dict[str, Any]
    backend: Backend
    state: dict[str, Any]
    path: Path | None = None

    @property
    def task(self) -> str:
        """The task the model was trained for: classification or regression."""
        return str(self.dataset["task"])

    @property
    def num_classes(self) -> int | None:
        """The classifier's number of classes (None for regression)."""
        return self.dataset.get("num_classes") if self.task == "classification" else None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-sample input shape, e.g. (1, 28, 28) or (1,)."""
        return tuple(self.dataset["input_shape"])

    @property
    def normalization(self) -> Normalization:
        """How raw inputs were scaled for training."""
        return Normalization.from_dict(self.dataset["normalization"])

    def describe(self) -> str:
        """'a 10-class classifier' or 'a regression model', for messages."""
        return f"a {self.num_classes}-class classifier" if self.task == "classification" else "a regression model"


def saved_config(path: Path, saved: Any) -> RunConfig:
    """The run's validated RunConfig; unknown keys or values mean another xnet version wrote it."""
    if not isinstance(saved, dict):
        raise unusable(path, "its config is not a table")
    known = {f.name for f in dataclasses.fields(RunConfig)}
    extra = sorted(set(saved) - known)
    if extra:
        raise unusable(path, f"unknown config key(s) {', '.join(map(repr, extra))}")
    for key, value in saved.items():
        if key != "layers" and not type_ok(key, value):
            raise unusable(path, f"config {key} = {value!r} has the wrong type (expected {FIELDS[key].type})")
    try:
        return validate(RunConfig(**plain(saved)), training=False)  # a run's new-run checks may have grown since
    except (XnetError, ValueError, TypeError) as e:
        raise unusable(path, f"config: {e}") from None


def _check_dataset(path: Path, ds: Any) -> None:
    """The recorded task, classes, input shape and normalisation have the types predict/evaluate need."""
    if not isinstance(ds, dict):
        raise unusable(path, "its dataset record is not a table")
    task, classes, shape = ds["task"], ds.get("num_classes"), ds["input_shape"]
    if task not in TASKS:
        raise unusable(path, f"dataset task {task!r}, expected one of {', '.join(TASKS)}")
    if task == "classification" and not (isinstance(classes, int) and classes >= 1):
        raise unusable(path, f"a classifier with num_classes {classes!r}")
    if not (isinstance(shape, list) and shape and all(isinstance(s, int) and s >= 1 for s in shape)):
        raise unusable(path, f"input_shape {shape!r} is not a list of positive sizes")
    try:
        Normalization.from_dict(ds["normalization"])
    except (XnetError, ValueError, TypeError, AttributeError) as e:
        raise unusable(path, str(e)) from None


def _check_fits(path: Path, model: Module, ds: dict[str, Any], backend: Backend, dtype: str) -> None:
    """One zero sample through the model: the recorded input shape and classes must fit it."""
    shape = tuple(ds["input_shape"])
    try:
        out = model.forward(backend.asarray(np.zeros((1, *shape)), dtype))
    except (ValueError, TypeError) as e:
        raise unusable(path, f"its model does not take the recorded input shape {shape}: {e}") from None
    k = ds.get("num_classes")
    if ds["task"] == "classification" and tuple(out.shape) != (1, k):
        raise unusable(path, f"its model gives {tuple(out.shape)[1:]} outputs for {k} classes")


def restore(path: str | Path, device: str = "cpu") -> Restored:
    """Load `path` and rebuild its model with its weights on `device`, in evaluation mode."""
    from xnet.nn.registry import model_from_config

    path = Path(path)
    state = load_checkpoint(path)
    cfg = saved_config(path, state["config"])
    _check_dataset(path, state["dataset"])
    trainer = state["trainer"]
    if not isinstance(trainer, dict) or not isinstance(trainer.get("model"), dict):
        raise unusable(path, "its trainer state holds no model weights")
    weights = trainer["model"]
    backend = get_backend(device, seed=cfg.seed)  # outside the try: no GPU is not a checkpoint problem
    try:
        with build_on(backend, cfg.dtype):
            model = model_from_config(state["model_spec"], "checkpoint model")
        model.load_state_dict(weights)
    except XnetError:
        raise
    except (ValueError, TypeError, AttributeError) as e:
        raise unusable(path, str(e)) from None
    model.eval()
    for param in model.parameters():  # one read at load time: NaN weights would predict nonsense quietly
        if not np.isfinite(backend.to_numpy(param.data)).all():
            raise unusable(path, f"its weights hold NaN or infinite values ({param.name})")
    _check_fits(path, model, state["dataset"], backend, cfg.dtype)
    return Restored(model, cfg, state["dataset"], backend, state, path)
