"""One training run from a RunConfig: data, model, optimizer, trainer, and the output folder."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import xnet
from xnet.atomic import atomic_write_text
from xnet.backends import Backend, get_backend
from xnet.config import LOCAL_KEYS, RunConfig, to_toml
from xnet.errors import ConfigError, DataError, DivergedError, XnetError
from xnet.nn.module import Module, build_on
from xnet.train.build import build_loss, build_model, build_optimizer, build_schedule, count, parameter_line
from xnet.train.checkpoint import load_checkpoint, unusable
from xnet.train.early_stopping import EarlyStopping
from xnet.train.progress import Reporter
from xnet.train.stop_signals import signal_name
from xnet.train.trainer import Trainer

HISTORY_COLUMNS = (
    "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
    "test_loss", "test_accuracy", "lr", "lr_end", "seconds",
)  # fmt: skip
# every file a training run writes in its folder (--overwrite deletes these and nothing else)
RUN_FILES = ("metrics.json", "history.csv", "model.npz", "best.npz", "config.toml", "curves.png", "prediction.png")


@dataclass
class RunResult:
    """What a finished (or interrupted) run produced."""

    out_dir: Path
    metrics: dict[str, Any]
    trainer: Trainer
    interrupted: bool


def default_out_dir(cfg: RunConfig) -> Path:
    """runs/<timestamp>-<model>, with -2, -3, ... when runs started in the same second."""
    base = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{cfg.model}"
    out, n = base, 1
    while out.exists():  # a run folder that exists is refused, so the default must be new
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


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


def check_out_dir(out_dir: Path) -> None:
    """Before any work: `out_dir` is a folder, or can become one, that this process may write in."""
    # the nearest existing folder decides: `out_dir` itself is created only by the first file written
    existing = out_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise XnetError(f"--out {out_dir}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise XnetError(f"--out {out_dir}: cannot write in {existing} (permission denied)")


def holds_run(out_dir: Path) -> bool:
    """Whether `out_dir` already holds the outputs of an xnet run."""
    return any((out_dir / name).exists() for name in ("metrics.json", "model.npz"))


def set_aside_run_files(out_dir: Path) -> Path | None:
    """Move the files a training run writes (nothing else) into a hidden folder of `out_dir`; returns it."""
    found = [out_dir / name for name in RUN_FILES if (out_dir / name).is_file() or (out_dir / name).is_symlink()]
    if not found:
        return None
    stash = Path(tempfile.mkdtemp(prefix=".replaced-", dir=out_dir))
    for path in found:
        os.replace(path, stash / path.name)
    return stash


def put_back_run_files(stash: Path, out_dir: Path) -> None:
    """Undo set_aside_run_files: the older run's files return to `out_dir`."""
    for path in stash.iterdir():
        os.replace(path, out_dir / path.name)
    stash.rmdir()


def check_dataset(cfg: RunConfig, ds: Any) -> None:
    """What training needs of the data: labels, images for --augment, finite values."""
    if ds.train.y is None:
        raise DataError(
            f"{cfg.dataset}: the data has no labels (no label column), so there is nothing to train on; "
            "an unlabelled file such as Kaggle's test.csv is for `xnet predict`"
        )
    shape = tuple(ds.input_shape)
    square = len(shape) == 1 and shape[0] > 1 and math.isqrt(shape[0]) ** 2 == shape[0]
    if cfg.augment and len(shape) != 3 and not square:
        raise ConfigError(
            f"augment: shifts and rotations apply to images, but {cfg.dataset} has samples of shape {shape}; "
            "drop --augment"
        )
    for name, split in ds.splits().items():
        for what, a in (("inputs", split.x), ("targets", split.y)):
            # one float64 sum is finite exactly when every value is (short of a 1e308 overflow, checked)
            if a is None or a.dtype.kind != "f" or np.isfinite(np.sum(a, dtype=np.float64)):
                continue
            bad = int(np.count_nonzero(~np.isfinite(a)))
            if bad:
                raise DataError(
                    f"{cfg.dataset}: the {name} {what} contain {bad} NaN or infinite value{'s' * (bad != 1)}; "
                    "fix or drop those samples"
                )


def data_key(cfg: RunConfig) -> tuple[Any, ...]:
    """The options that decide what load_dataset returns: runs with equal keys can share one Dataset."""
    return (cfg.dataset, cfg.data_dir, cfg.normalize, cfg.val_split, cfg.seed, cfg.limit)


class DataCache:
    """The dataset loaded last, kept for the next run that asks for the same data.

    One entry only: a study's variants usually share their data, and one MNIST is 180 MB in float32,
    so holding one copy per variant (or per seed) is what this avoids. Runs only read the arrays.
    """

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._data: Any = None

    def load(self, cfg: RunConfig) -> Any:
        """The Dataset `cfg` asks for, read unless the last one loaded was the same."""
        from xnet.data import load_dataset

        key = data_key(cfg)
        if key != self._key:
            self._key, self._data = None, None  # free the old arrays before reading the new ones
            self._data = load_dataset(
                cfg.dataset, data_dir=cfg.data_dir, normalize=cfg.normalize, val_split=cfg.val_split,
                seed=cfg.seed, limit=cfg.limit,
            )  # fmt: skip
            self._key = key
        return self._data


@dataclass
class PreparedRun:
    """Everything a run needs before its first step: built and checked, nothing written."""

    cfg: RunConfig
    out_dir: Path
    backend: Backend
    data: Any
    loader: Any
    trainer: Trainer


def prepare_run(
    cfg: RunConfig, out_dir: Path, reporter: Reporter, cache: DataCache | None = None, parallel: Any = None
) -> PreparedRun:
    """Load and check the data, build model, loss, optimizer, schedule and trainer, and forward one sample.

    `parallel` (a DataParallel) builds this rank's part of a data-parallel run: its device, no
    files of its own unless it is rank 0, and batches that split evenly over the ranks.

    Every mistake a run can be found to have before training (a loss that does not suit the task, a
    model that does not fit the data, a bad optimizer argument, an allocation that fails) raises here;
    nothing is written and `out_dir` is not touched.
    """
    from xnet.data import Augment, DataLoader

    device = cfg.device if parallel is None else parallel.device(cfg.device)
    backend: Backend = get_backend(device, seed=cfg.seed)
    ds = (cache or DataCache()).load(cfg)
    reporter.message(f"data: {ds.source}")
    check_dataset(cfg, ds)
    outputs = ds.num_classes or int(np.prod(ds.train.y.shape[1:]))
    with build_on(backend, cfg.dtype):
        backend.rng.seed(cfg.seed)
        model = build_model(cfg, tuple(ds.input_shape), outputs)
        loss = build_loss(cfg, ds.task)
    reporter.message(parameter_line(model))
    optimizer = build_optimizer(cfg, model)
    n_train = ds.train.x.shape[0]
    batch = n_train if cfg.batch_size == "full" else min(int(cfg.batch_size), n_train)
    augment = Augment(backend=backend) if cfg.augment else None
    loader = DataLoader(
        ds.train.x, ds.train.y, batch, backend, shuffle=True, seed=cfg.seed, drop_last="single",
        augment=augment, dtype=cfg.dtype,
    )  # fmt: skip
    steps_per_epoch = len(loader)  # the steps the trainer runs: it skips a last batch of one sample
    schedule = build_schedule(cfg, optimizer.lr, steps_per_epoch)
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
    writes = parallel is None or parallel.is_root  # rank 0 alone writes the run folder
    if parallel is not None:
        parallel.check_batches(loader)
    trainer = Trainer(
        model, loss, optimizer, schedule, backend, seed=cfg.seed, reporter=reporter,
        log_every=max(1, steps_per_epoch // 20), checkpoint_path=out_dir / "model.npz" if writes else None,
        best_path=out_dir / "best.npz" if stopper and writes else None, early_stopping=stopper, meta=meta,
        parallel=parallel, checkpoint_every=cfg.checkpoint_every,
    )  # fmt: skip
    # a model that does not fit the data fails here, before anything is written or replaced
    trainer.check_model(loader)
    return PreparedRun(cfg, out_dir, backend, ds, loader, trainer)


class RunDiverged(DivergedError):
    """Training diverged; `metrics` records the epochs that finished, `written` whether the run folder has them."""

    def __init__(self, message: str, metrics: dict[str, Any], written: bool):
        super().__init__(message)
        self.metrics, self.written = metrics, written


def diverged_metrics(cfg: RunConfig, history: list[dict[str, Any]], error: Exception) -> dict[str, Any]:
    """The metrics.json of a run that diverged: its finished epochs and a "status" saying why it stopped."""
    return {
        "status": f"diverged: {error}",
        "epochs": history,
        "epochs_completed": len(history),
        "seed": cfg.seed,
        "config": cfg.to_dict(),
    }


def write_record(out_dir: Path, metrics: dict[str, Any]) -> None:
    """metrics.json and history.csv (one row per finished epoch), each written atomically."""
    atomic_write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(metrics["epochs"])
    atomic_write_text(out_dir / "history.csv", buf.getvalue())


def run_training(
    cfg: RunConfig,
    reporter: Reporter,
    resume: bool = False,
    existing: str = "refuse",
    cache: DataCache | None = None,
    parallel: Any = None,
) -> RunResult:
    """Train as `cfg` says and write the output folder; returns metrics and the trainer.

    `existing` says what to do when the output folder already holds a run and this is no resume:
    "refuse" (an error, as `xnet train` without --overwrite) or "replace" (the files a run writes
    give way to the new run's once it has written its own; they stay if it fails before). `cache`
    lets runs on the same data share one copy. A run that diverges raises RunDiverged; when epochs
    had finished, their metrics.json and history.csv are written next to the checkpoint first.

    `parallel` (a DataParallel) makes this process one rank of a data-parallel run: the ranks set
    up together (a failure on any stops all, see xnet/parallel/agree.py), train one model, and
    rank 0 alone writes the folder (the others return empty metrics).
    """
    from xnet.parallel.agree import agreement, check_same, data_fingerprint

    if existing not in ("refuse", "replace"):
        raise ValueError(f"run_training: existing must be 'refuse' or 'replace', got {existing!r}")
    writes = parallel is None or parallel.is_root
    world = getattr(parallel, "world", None)
    out_dir = Path(cfg.out) if cfg.out else default_out_dir(cfg)
    with agreement(world):
        if writes:
            check_out_dir(out_dir)
            if not resume and existing == "refuse" and holds_run(out_dir):
                raise XnetError(
                    f"--out {out_dir} already holds a run; pass --overwrite to replace it, or --resume to continue it"
                )
        run = prepare_run(cfg, out_dir, reporter, cache, parallel)
        trainer = run.trainer
        if resume:
            _resume(trainer, out_dir, cfg, reporter)
    if world is not None:
        compared = {k: v for k, v in cfg.to_dict().items() if k not in LOCAL_KEYS}
        check_same(world, xnet.__version__, compared, data_fingerprint(run.data.train.x, run.data.train.y))
    # replacing: the older run's files are set aside, and come back if the new run fails before it
    # has written a run of its own (a mistake or a divergence in its first epoch)
    stash = set_aside_run_files(out_dir) if existing == "replace" and not resume and writes else None
    try:
        # no mkdir: the first checkpoint creates the folder, so a run that fails early leaves none
        try:
            trainer.fit(run.loader, cfg.epochs, val=run.data.val, test=run.data.test)
        except DivergedError as e:
            error = _diverged(out_dir, cfg, trainer, e, writes)
            error.every_rank = world is not None  # every rank saw the same global loss
            raise error from None
        except MemoryError as e:  # NumPy's _ArrayMemoryError, CuPy's OutOfMemoryError
            raise XnetError(
                f"out of memory while training with batch size {run.loader.batch_size} on "
                f"{run.backend.memory_description()} ({e or 'an allocation failed'}); try a smaller --batch-size "
                "or model"
            ) from None
        ranks = 1 if parallel is None else parallel.size
        metrics = write_outputs(out_dir, cfg, trainer, run.data, run.backend, ranks) if writes else {}
    except BaseException:
        if stash is not None and not holds_run(out_dir):
            put_back_run_files(stash, out_dir)
            stash = None
        raise
    finally:
        if stash is not None:
            shutil.rmtree(stash, ignore_errors=True)
    return RunResult(out_dir, metrics, trainer, trainer.interrupted)


def _diverged(
    out_dir: Path, cfg: RunConfig, trainer: Trainer, error: DivergedError, writes: bool = True
) -> RunDiverged:
    """Record the finished epochs of a diverged run beside its checkpoint, so the folder is a coherent run."""
    metrics = diverged_metrics(cfg, list(trainer.history), error)
    if not trainer.history:  # no epoch finished: no checkpoint, no folder, nothing to record
        return RunDiverged(str(error), metrics, written=False)
    if writes:
        write_record(out_dir, metrics)
    finished = count(len(trainer.history), "finished epoch")
    return RunDiverged(
        f"{error}; the last good checkpoint is kept in {out_dir / 'model.npz'}, the {finished} in metrics.json",
        metrics,
        written=True,
    )


def _resume(trainer: Trainer, out_dir: Path, cfg: RunConfig, reporter: Reporter) -> None:
    """Load the trainer state of out_dir/model.npz, checking it is this model and has epochs left."""
    path = out_dir / "model.npz"
    if not path.is_file():
        raise XnetError(f"--resume: no checkpoint at {path} (train with --out {out_dir} first)")
    state = load_checkpoint(path)
    _check_resume(state, trainer.model, path)
    try:
        trainer.load_state_dict(state["trainer"])
    except ValueError as e:  # e.g. a malformed random state: the message names the field
        raise unusable(path, str(e)) from None
    reporter.message(
        f"resuming {path} at epoch {trainer.epoch + 1}"
        + (f", step {trainer.step_in_epoch + 1}" if trainer.step_in_epoch else "")
    )
    if trainer.epoch >= cfg.epochs:
        raise XnetError(f"--resume: {path} already completed {trainer.epoch} epochs; raise --epochs")


def write_outputs(
    out_dir: Path, cfg: RunConfig, trainer: Trainer, ds: Any, backend: Backend, ranks: int = 1
) -> dict[str, Any]:
    """metrics.json, history.csv, config.toml and the plots, written atomically (`ranks`: processes that trained)."""
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
        "stop_signal": signal_name(trainer.stop_signal) if trainer.stop_signal else None,
        "stopped_early": trainer.stopped_early,
        "train_seconds": sum(r["seconds"] for r in history),
        "task": ds.task,
        "backend": backend.name,
        "device": backend.device_name,
        "ranks": ranks,
        "dtype": cfg.dtype,
        "seed": cfg.seed,
        "num_parameters": trainer.model.num_parameters(),
        "data_source": ds.source,
        "config": cfg.to_dict(),
    }
    write_record(out_dir, metrics)
    atomic_write_text(out_dir / "config.toml", to_toml(cfg))
    if history:
        plot_histories({cfg.model: history}, out_dir / "curves.png")
    if ds.task == "regression" and ds.test is not None and ds.test.x.reshape(len(ds.test.x), -1).shape[1] == 1:
        pred = backend.to_numpy(trainer.predict(backend.asarray(ds.test.x, cfg.dtype)))
        title = f"{cfg.dataset}: test MSE {metrics['test_loss']:.4g}"
        plot_prediction(ds.test.x, ds.test.y, pred, out_dir / "prediction.png", title)
    return metrics
