"""One training run from a RunConfig: data, model, optimizer, trainer, and the output folder."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import xnet
from xnet.atomic import atomic_write_text
from xnet.backends import Backend, get_backend
from xnet.config import LOCAL_KEYS, RunConfig, to_toml
from xnet.errors import DivergedError, XnetError
from xnet.nn.module import Module, build_on
from xnet.optim.factory import resolve_lr
from xnet.runs.build import build_loss, build_model, build_optimizer, build_schedule, count, parameter_line
from xnet.runs.callbacks import load_callbacks
from xnet.runs.data import DataCache, check_dataset
from xnet.runs.folder import (
    check_out_dir,
    default_out_dir,
    diverged_metrics,
    holds_run,
    put_back_run_files,
    set_aside_run_files,
    write_record,
)
from xnet.train.checkpoint import load_checkpoint, unusable
from xnet.train.early_stopping import EarlyStopping
from xnet.train.progress import Reporter
from xnet.train.stop_signals import signal_name
from xnet.train.trainer import Trainer


@dataclass
class RunResult:
    """What a finished (or interrupted) run produced."""

    out_dir: Path
    metrics: dict[str, Any]
    trainer: Trainer
    interrupted: bool


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


@dataclass
class PreparedRun:
    """Everything a run needs before its first step: built and checked, nothing written."""

    cfg: RunConfig
    out_dir: Path
    backend: Backend
    data: Any
    loader: Any
    trainer: Trainer
    callbacks: list[Any] = field(default_factory=list)  # the run's own (--callbacks), imported and checked


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
    backend.warm_up()  # its fast paths get ready while the data are read
    ds = (cache or DataCache()).load(cfg)
    reporter.message(f"data: {ds.source}")
    check_dataset(cfg, ds)
    outputs = ds.num_classes or int(np.prod(ds.train.y.shape[1:]))
    with build_on(backend, cfg.dtype):
        backend.rng.seed(cfg.seed)
        model = build_model(cfg, tuple(ds.input_shape), outputs)
        loss = build_loss(cfg, ds.task)
    reporter.message(parameter_line(model))
    lr = resolve_lr(cfg.optimizer, cfg.lr)  # decided once: the optimizer starts from it, the schedule shapes it
    optimizer = build_optimizer(cfg, model, lr)
    n_train = len(ds.train)
    batch = n_train if cfg.batch_size == "full" else min(int(cfg.batch_size), n_train)
    augment = Augment(backend=backend) if cfg.augment else None
    loader = DataLoader(
        ds.train.inputs, ds.train.y, batch, backend, shuffle=True, seed=cfg.seed, drop_last="single",
        augment=augment, dtype=cfg.dtype,
    )  # fmt: skip
    steps_per_epoch = len(loader)  # the steps the trainer runs: it skips a last batch of one sample
    schedule = build_schedule(cfg, lr, steps_per_epoch)
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
    trainer = Trainer(
        model, loss, optimizer, schedule, backend, seed=cfg.seed, reporter=reporter,
        log_every=max(1, steps_per_epoch // 20), checkpoint_path=out_dir / "model.npz" if writes else None,
        best_path=out_dir / "best.npz" if writes else None, early_stopping=stopper, meta=meta,
        parallel=parallel, checkpoint_every=cfg.checkpoint_every,
        history_path=out_dir / "history.csv" if writes else None,  # a row per epoch, as it ends
    )  # fmt: skip
    # a model that does not fit the data, or batches that do not split over the ranks, fail here,
    # before anything is written or replaced (fit does not check this loader again)
    trainer.check_model(loader)
    return PreparedRun(cfg, out_dir, backend, ds, loader, trainer, load_callbacks(cfg.callbacks))


class RunDiverged(DivergedError):
    """Training diverged; `metrics` records the epochs that finished, `written` whether the run folder has them."""

    def __init__(self, message: str, metrics: dict[str, Any], written: bool):
        super().__init__(message)
        self.metrics, self.written = metrics, written


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
        check_same(world, xnet.__version__, compared, data_fingerprint(run.data.train.inputs, run.data.train.y))
    # replacing: the older run's files are set aside, and come back if the new run fails before it
    # has written a run of its own (a mistake or a divergence in its first epoch)
    stash = set_aside_run_files(out_dir) if existing == "replace" and not resume and writes else None
    try:
        # no mkdir: the first checkpoint creates the folder, so a run that fails early leaves none
        try:
            trainer.fit(run.loader, cfg.epochs, val=run.data.val, test=run.data.test, callbacks=run.callbacks)
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
    from xnet.plots.curves import plot_histories, plot_prediction

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
