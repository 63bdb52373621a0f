"""One training run from a RunConfig: data, model, optimizer, trainer, and the output folder."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import xnet
from xnet.atomic import atomic_write_text
from xnet.backends import Backend, get_backend
from xnet.config import RunConfig, to_toml
from xnet.errors import ConfigError, XnetError
from xnet.nn.module import Module, build_on
from xnet.train.checkpoint import load_checkpoint
from xnet.train.early_stopping import EarlyStopping
from xnet.train.progress import Reporter
from xnet.train.trainer import Trainer

HISTORY_COLUMNS = (
    "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
    "test_loss", "test_accuracy", "lr", "lr_end", "seconds",
)  # fmt: skip


@dataclass
class RunResult:
    """What a finished (or interrupted) run produced."""

    out_dir: Path
    metrics: dict[str, Any]
    trainer: Trainer
    interrupted: bool


def default_out_dir(cfg: RunConfig) -> Path:
    """runs/<timestamp>-<model>."""
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{cfg.model}"


def build_model(cfg: RunConfig, input_shape: tuple[int, ...], outputs: int) -> Module:
    """The network a config describes (a preset or its [[model.layers]]), on the current build."""
    from xnet.models import build_preset
    from xnet.nn.registry import model_from_config

    if cfg.layers:
        return model_from_config({"layers": cfg.layers}, "model")
    return build_preset(
        cfg.model, input_shape, outputs, cfg.hidden, cfg.activation, cfg.init, cfg.dropout, cfg.batch_norm
    )


def build_loss(cfg: RunConfig, task: str) -> Module:
    """Cross-entropy, or MSE: on softmax outputs for classification, on raw outputs for regression."""
    from xnet.losses import get_loss

    name = cfg.loss
    if task == "regression" and name != "mse":
        raise ConfigError(f"loss {name!r} needs class labels, but {cfg.dataset!r} is a regression task: use --loss mse")
    if name == "mse" and task == "classification":
        name = "softmax-mse"
    return get_loss(name)


def build_optimizer(cfg: RunConfig, model: Module) -> Any:
    """The optimizer with L1/L2 regularisers, clipping and (AdamW) decoupled weight decay."""
    from xnet.optim import L1, L2, get_optimizer

    regularizers = ([L1(cfg.l1)] if cfg.l1 else []) + ([L2(cfg.l2)] if cfg.l2 else [])
    kwargs: dict[str, Any] = {"regularizers": regularizers, "clip_norm": cfg.clip_norm}
    if cfg.momentum is not None and cfg.optimizer in ("sgd", "momentum", "nesterov"):
        kwargs["momentum"] = cfg.momentum
    if cfg.optimizer == "adam":
        kwargs["bias_correction"] = cfg.bias_correction
    if cfg.weight_decay:
        kwargs["weight_decay"] = cfg.weight_decay
    return get_optimizer(cfg.optimizer, model.parameters(), lr=cfg.lr, **kwargs)


def build_schedule(cfg: RunConfig, lr: float, steps_per_epoch: int) -> Any:
    """The lr schedule over the run's total number of optimizer steps."""
    from xnet.optim import get_schedule

    total = cfg.epochs * steps_per_epoch
    kwargs: dict[str, Any] = {}
    if cfg.warmup_epochs:
        kwargs["warmup_steps"] = int(round(cfg.warmup_epochs * steps_per_epoch))
    return get_schedule(cfg.schedule, lr, total, steps_per_epoch=steps_per_epoch, **kwargs)


def _check_resume(state: dict[str, Any], model: Module, path: Path) -> None:
    saved = state.get("model_spec")
    if saved is not None and saved != model.config():
        ours = model.state_dict()
        theirs = state["trainer"]["model"]
        diffs = [
            f"{k}: checkpoint {tuple(theirs[k].shape) if k in theirs else 'missing'}, model {v.shape}"
            for k, v in ours.items()
            if k not in theirs or tuple(theirs[k].shape) != v.shape
        ] + [f"{k}: only in checkpoint" for k in theirs if k not in ours]
        raise XnetError(
            f"{path} holds another model ({'; '.join(diffs) or 'same shapes, different layers'})"
        )


def run_training(cfg: RunConfig, reporter: Reporter, resume: bool = False) -> RunResult:
    """Train as `cfg` says and write the output folder; returns metrics and the trainer."""
    from xnet.data import Augment, DataLoader, load_dataset

    backend: Backend = get_backend(cfg.device, seed=cfg.seed)
    ds = load_dataset(
        cfg.dataset, data_dir=cfg.data_dir, normalize=cfg.normalize, val_split=cfg.val_split,
        seed=cfg.seed, limit=cfg.limit,
    )  # fmt: skip
    reporter.message(f"data: {ds.source}")
    outputs = ds.num_classes or int(np.prod(ds.train.y.shape[1:]))
    with build_on(backend, cfg.dtype):
        backend.rng.seed(cfg.seed)
        model = build_model(cfg, tuple(ds.input_shape), outputs)
        loss = build_loss(cfg, ds.task)
    optimizer = build_optimizer(cfg, model)
    n_train = ds.train.x.shape[0]
    batch = n_train if cfg.batch_size == "full" else min(int(cfg.batch_size), n_train)
    steps_per_epoch = math.ceil(n_train / batch)
    schedule = build_schedule(cfg, optimizer.lr, steps_per_epoch)
    augment = Augment(backend=backend) if cfg.augment else None
    loader = DataLoader(
        ds.train.x, ds.train.y, batch, backend, shuffle=True, seed=cfg.seed, augment=augment, dtype=cfg.dtype
    )
    out_dir = Path(cfg.out) if cfg.out else default_out_dir(cfg)
    meta = {
        "xnet_version": xnet.__version__,
        "model_spec": model.config(),
        "config": cfg.to_dict(),
        "dataset": {
            "name": cfg.dataset,
            "task": ds.task,
            "num_classes": ds.num_classes,
            "input_shape": list(ds.input_shape),
            "normalization": ds.normalization.to_dict(),
        },
        "num_classes": ds.num_classes,
    }
    stopper = EarlyStopping("val_loss", cfg.early_stopping) if cfg.early_stopping else None
    trainer = Trainer(
        model, loss, optimizer, schedule, backend, seed=cfg.seed, reporter=reporter,
        log_every=max(1, steps_per_epoch // 20), checkpoint_path=out_dir / "model.npz",
        best_path=out_dir / "best.npz" if stopper else None, early_stopping=stopper, meta=meta,
    )  # fmt: skip
    if resume:
        path = out_dir / "model.npz"
        if not path.is_file():
            raise XnetError(f"--resume: no checkpoint at {path} (train with --out {out_dir} first)")
        state = load_checkpoint(path)
        _check_resume(state, model, path)
        trainer.load_state_dict(state["trainer"])
        reporter.message(
            f"resuming {path} at epoch {trainer.epoch + 1}"
            + (f", step {trainer.step_in_epoch + 1}" if trainer.step_in_epoch else "")
        )
        if trainer.epoch >= cfg.epochs:
            raise XnetError(f"--resume: {path} already completed {trainer.epoch} epochs; raise --epochs")
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer.fit(loader, cfg.epochs, val=ds.val, test=ds.test)
    metrics = write_outputs(out_dir, cfg, trainer, ds, backend)
    return RunResult(out_dir, metrics, trainer, trainer.interrupted)


def write_outputs(out_dir: Path, cfg: RunConfig, trainer: Trainer, ds: Any, backend: Backend) -> dict[str, Any]:
    """metrics.json, history.csv, config.toml and the plots, each written atomically."""
    from xnet.plots import plot_histories, plot_prediction

    history = trainer.history
    last = history[-1] if history else {}
    metrics = {
        "test_accuracy": last.get("test_accuracy"),
        "test_loss": last.get("test_loss"),
        "train_accuracy": last.get("train_accuracy"),
        "train_loss": last.get("train_loss"),
        "val_accuracy": last.get("val_accuracy"),
        "val_loss": last.get("val_loss"),
        "best_test_accuracy": max(
            (r["test_accuracy"] for r in history if r.get("test_accuracy") is not None), default=None
        ),
        "losses_include_penalty": bool(cfg.l1 or cfg.l2),
        "epochs": history,
        "epochs_completed": trainer.epoch,
        "interrupted": trainer.interrupted,
        "stopped_early": trainer.stopped_early,
        "train_seconds": sum(r["seconds"] for r in history),
        "task": ds.task,
        "backend": backend.name,
        "device": backend.device_name,
        "dtype": cfg.dtype,
        "seed": cfg.seed,
        "num_parameters": trainer.model.num_parameters(),
        "data_source": ds.source,
        "config": cfg.to_dict(),
    }
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(out_dir / "history.csv", buf.getvalue())
    atomic_write_text(out_dir / "config.toml", to_toml(cfg))
    if history:
        plot_histories({cfg.model: history}, out_dir / "curves.png")
    if ds.task == "regression" and ds.test is not None and ds.test.x.reshape(len(ds.test.x), -1).shape[1] == 1:
        pred = backend.to_numpy(trainer.predict(backend.asarray(ds.test.x, cfg.dtype)))
        title = f"{cfg.dataset}: test MSE {metrics['test_loss']:.4g}"
        plot_prediction(ds.test.x, ds.test.y, pred, out_dir / "prediction.png", title)
    return metrics
