"""Trainer: the epoch loop and the state it resumes from (weights, optimizer, RNG, history) and Ctrl-C.

About 400 lines, over the usual 300: fit, the resumable state and the Ctrl-C handling share the same
counters (epoch, step in epoch, the partial sums of an interrupted epoch) and are one thing to read.
One epoch's steps are in epoch.py, what fit does before step one in preflight.py, the evaluation
loop in evaluation.py, the argument checks in trainer_checks.py, how fit's callbacks are put
together in callbacks/fit.py, the learning-rate range test in lr_find.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from xnet.backends import Array, Backend, get_backend
from xnet.backends.rng import check_seed
from xnet.checks import check_int
from xnet.data.loader import DataLoader
from xnet.nn.module import Module
from xnet.parallel.data_parallel import SingleProcess
from xnet.train.cadence import CheckpointCadence
from xnet.train.callbacks import BestCheckpoint, CallbackList
from xnet.train.callbacks.fit import best_checkpoint, end_training, fit_callbacks, learning_schedule
from xnet.train.checkpoint import save_checkpoint
from xnet.train.early_stopping import EarlyStopping
from xnet.train.epoch import train_epoch
from xnet.train.evaluation import evaluate_loader
from xnet.train.history import History
from xnet.train.lr_find import LRFindResult, check_bounds, range_test
from xnet.train.metrics import EvalResult
from xnet.train.preflight import (
    check_batch_norm_batches,
    check_monitor,
    check_outputs,
    forward_one,
    is_classification,
    make_loader,
    training_loader,
)
from xnet.train.progress import Reporter, reporter_for
from xnet.train.stop_signals import StopRequests
from xnet.train.trainer_checks import check_parts, check_reduction, check_usable, data_pair


class Trainer:
    """Fits `model` with `loss` and `optimizer` (and an optional lr `schedule`) on one backend.

    Per epoch it records train loss/accuracy, validation and test loss/accuracy when given, the
    lr used and the seconds taken. Reported losses include the regularisation penalty of the
    optimizer's regularizers, evaluated with the weights at the end of the epoch.

    Reported losses are per term (per sample for cross-entropy), whatever the loss's reduction: a
    "sum" loss reads as the "mean" one would, and its penalty is divided by the terms of a training
    batch, as the summed objective (sum of the batch's terms + penalty) is. A "none" loss is refused.

    `reporter` shows progress; without one, `fit` shows it as its `verbose` says (a bar by default).
    Progress, early stopping, the schedule's epoch hook (PlateauSchedule) and the files below are
    callbacks of `fit` (xnet/train/callbacks/), run around the ones `fit(callbacks=...)` is given.

    `best_path` gets the trainer's state whenever the best epoch so far ends (early stopping's metric
    when it is on, else val_loss with validation data, else train_loss); `history_path` is a
    history.csv that gains its row at the end of every epoch.

    `checkpoint_path` gets a checkpoint at each epoch's end, and also every `checkpoint_every` steps
    (500) or time ("10m") when given. Ctrl-C, SIGTERM, SIGHUP and SIGUSR1 (or `request_stop()`) stop
    `fit` after the current step with a mid-epoch checkpoint that resumes exactly; `interrupted` and
    `stop_signal` say so afterwards.

    The training pass never runs a last batch of one sample (it is skipped, see `fit`);
    evaluation always covers every sample. `optimizer` may be None for a trainer that only
    evaluates; it must update this model's own parameters. `parallel` (a DataParallel) makes this
    trainer one rank of a data-parallel run (xnet/parallel/); None trains in this process alone.
    """

    def __init__(
        self,
        model: Module,
        loss: Module,
        optimizer: Any,
        schedule: Any = None,
        backend: Backend | str | None = None,
        *,
        seed: int = 0,
        reporter: Reporter | None = None,
        log_every: int = 100,
        checkpoint_path: str | Path | None = None,
        best_path: str | Path | None = None,
        early_stopping: EarlyStopping | None = None,
        meta: dict[str, Any] | None = None,
        parallel: SingleProcess | None = None,
        checkpoint_every: int | str | None = None,
        history_path: str | Path | None = None,
    ):
        check_parts(model, loss, optimizer, schedule, early_stopping)
        check_int("Trainer", "seed", seed)
        check_seed(seed, "Trainer: seed")
        check_int("Trainer", "log_every", log_every)
        self.backend = get_backend(backend) if backend is not None else model.backend
        if model.backend is not self.backend:
            model.to(self.backend)
        if loss.backend is not self.backend:
            loss.to(self.backend, model.dtype)
        self.model, self.loss, self.optimizer, self.schedule = model, loss, optimizer, schedule
        self.seed = seed
        self.reporter = reporter  # None: fit shows progress as its `verbose` says
        self.log_every = max(1, int(log_every))
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.best_path = Path(best_path) if best_path else None
        self.history_path = Path(history_path) if history_path else None
        self.early_stopping = early_stopping
        self._best: BestCheckpoint | None = None  # kept between fits: its best is part of a resumed state
        self.meta = meta or {}
        self.parallel = parallel or SingleProcess()
        self.epoch = 0  # completed epochs
        self.step_in_epoch = 0  # steps done in the current (unfinished) epoch
        self.global_step = 0
        self.history = History()
        self._batch_terms = 1  # the loss terms in one training batch (known once fit has seen the data)
        self.interrupted = False
        self.stop_signal: int | None = None  # the signal that interrupted fit (None: none, or request_stop)
        self.stopped_early = False
        self._partial = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0, "lr": None}
        self.cadence = CheckpointCadence(checkpoint_every)
        self._stop = StopRequests()
        self._stop_at_boundary = False  # every rank agreed, in an epoch's last step, to stop at its end
        self._eval_loaders: dict[int, tuple[Any, DataLoader]] = {}
        self._checked: tuple[DataLoader | None, int] = (None, 0)  # the training loader check_model passed
        self._callbacks = CallbackList([])  # fit's, while it runs

    # -- before step one (xnet/train/preflight.py) ---------------------------------------------------

    def _is_classification(self, loader: DataLoader) -> bool:
        return is_classification(self.loss, loader)

    def _eval_loader(self, data: Any, batch_size: int = 1000, what: str = "Trainer.evaluate: data") -> DataLoader:
        # cached so evaluation data crosses to the device once, not every epoch
        key = id(data)
        if key not in self._eval_loaders:
            loader = make_loader(data, batch_size, self.backend, self.seed, self.model.dtype, shuffle=False, what=what)
            check_usable(loader, what)
            self._check_targets_once(loader)
            self._eval_loaders[key] = (data, loader)
        return self._eval_loaders[key][1]

    def _check_targets_once(self, loader: DataLoader, width: int | None = None) -> None:
        """Check a data set's targets once (label range, BCE's [0, 1], soft targets finite and >= 0), so
        the loss can skip its per-step check (a GPU sync). `width`: the model's outputs per sample, if known."""
        if loader.y is None:
            return
        if width is None:
            width = int(math.prod(forward_one(self.model, loader).shape[1:]))
        k = self.meta.get("num_classes")
        classes = width if k is None else min(int(k), width)
        self.loss.check_targets(loader.y, classes, "Trainer")
        self.loss.check_labels = False

    def check_model(self, data: Any) -> int:
        """Forward one sample before training: the layers fit the data and a classifier has one output per class.

        Given the training DataLoader, also checks that its batches suit batch norm and split over the
        ranks of a data-parallel run; fit does not repeat the checks for that loader. Returns the
        model's outputs per sample."""
        if not isinstance(data, DataLoader):  # one sample is enough: do not move the whole set to the device
            x, y = data_pair(data, "Trainer.check_model: data")
            data = (x[:1], None if y is None else y[:1])
        what = "Trainer.check_model: data"
        loader = make_loader(data, 1, self.backend, self.seed, self.model.dtype, shuffle=False, what=what)
        check_usable(loader, what, targets=False)
        if isinstance(data, DataLoader):
            self.parallel.check_batches(data)
            check_batch_norm_batches(self.model, data)
        out = forward_one(self.model, loader)  # evaluation mode: the run is unchanged
        if isinstance(data, DataLoader):  # batch norm's input shapes are known after that forward
            self.parallel.check_batch_norm(self.model, min(data.batch_size, data.n))
        width = check_outputs(out, self.loss, loader, self.meta.get("num_classes"))
        if isinstance(data, DataLoader):
            self._checked = (data, width)
        return width

    # -- training ------------------------------------------------------------------------------------

    def fit(
        self,
        train: Any,
        epochs: int,
        val: Any = None,
        test: Any = None,
        batch_size: int | str | None = 128,
        verbose: int | str | None = None,
        callbacks: Any = None,
    ) -> History:
        """Train until `epochs` epochs are complete in total (a resumed trainer continues).

        `train`, `val`, `test`: DataLoaders, Splits or (x, y) host arrays. Returns the history, a
        list of per-epoch dicts that also gives each metric by name (`history["val_loss"]`).
        Training batches are reshuffled every epoch; a last batch of exactly one sample is skipped
        (batch norm cannot train on it), also when `train` is a DataLoader with drop_last=False,
        so an epoch of 57 samples in batches of 7 runs 8 steps. Evaluation uses every sample.

        `verbose`, as in Keras: 0 silent, 1 a live bar (loss, samples/s), 2 one line per epoch,
        "auto" a bar in a terminal or a notebook and lines otherwise. None (the default) means the
        Trainer's `reporter` if it was given one, else "auto".

        `callbacks`: Callback objects (xnet.train.Callback) or functions(epoch, logs), called in order
        after the progress display, the schedule and early stopping, and before the checkpoints are
        written; one that raises stops training with a CallbackError naming it.
        """
        if self.optimizer is None:
            raise ValueError(
                "Trainer.fit needs an optimizer: this Trainer was built with optimizer=None (evaluation only)"
            )
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {epochs!r}")
        check_reduction(self.loss, "Trainer.fit")
        reporter = reporter_for(verbose, self.reporter)
        cbs = fit_callbacks(self, reporter, callbacks)
        loader = training_loader(train, batch_size, self.backend, self.seed, self.model.dtype)
        watchers = [("EarlyStopping", self.early_stopping), ("PlateauSchedule", learning_schedule(self.schedule))]
        for owner, watcher in watchers:
            if watcher is not None:
                check_monitor(owner, watcher.monitor, self.loss, loader, val, test)
        checked, width = self._checked
        if checked is not loader:  # not yet checked by the caller (run_training checks before it writes)
            width = self.check_model(loader)
        self._check_targets_once(loader, width)  # one forward of one sample for both
        loader = self.parallel.shard(loader)
        self._batch_terms = min(loader.batch_size, loader.n) * self.loss.terms_per_sample(width)
        # the evaluation data too is checked (and moved to the device) before the first epoch, not after it
        for name, data in (("val", val), ("test", test)):
            if data is not None:
                self._eval_loader(data, what=f"Trainer.fit: {name}")
        self.parallel.start(self.model, self.optimizer)
        self._stop.install()
        self.interrupted, self.stop_signal, self._stop_at_boundary = False, None, False
        self.cadence.saved()  # a time cadence counts from the start of training
        self.stopped_early = False
        saved_reporter, self.reporter, self._callbacks = self.reporter, reporter, cbs
        # the input is data: no gradient for it (the first layer skips its input gradient)
        input_grad = getattr(self.model, "needs_input_grad", None)
        if input_grad is not None:
            self.model.needs_input_grad = False
        failed = True
        try:
            cbs.on_train_begin({"epochs": epochs, "initial_epoch": self.epoch})
            # overflow in a diverging run is reported once, as DivergedError, not as NumPy warnings
            with np.errstate(over="ignore", invalid="ignore"):
                for epoch in range(self.epoch + 1, epochs + 1):
                    record = self._train_epoch(loader, epoch, epochs)
                    if record is None:
                        self._interrupt()
                        self.save(self.checkpoint_path)
                        break
                    for name, data in (("val", val), ("test", test)):
                        if data is not None:
                            result = self._epoch_eval(data)
                            record[f"{name}_loss"], record[f"{name}_accuracy"] = result.loss, result.accuracy
                    self.epoch, self.step_in_epoch = epoch, 0
                    self.history.append(record)
                    cbs.on_epoch_end(epoch, record)  # progress, schedule, early stopping, the user's, files
                    if self.stopped_early:
                        break
                    if epoch < epochs and self.parallel.stop_after_step(self._stop_at_boundary, self._stop.requested):
                        self._interrupt()  # a stop asked for in the epoch's last step: its checkpoint is written
                        break
            failed = False
        finally:
            if input_grad is not None:
                self.model.needs_input_grad = input_grad
            self._stop.restore()
            end_training(self, cbs, failed)
            self.reporter, self._callbacks = saved_reporter, None
        return self.history

    def _train_epoch(self, loader: DataLoader, epoch: int, epochs: int) -> dict[str, Any] | None:
        """One epoch of steps (xnet/train/epoch.py); returns its record, or None when interrupted."""
        return train_epoch(self, loader, epoch, epochs)

    def lr_find(
        self,
        train: Any,
        start_lr: float = 1e-7,
        end_lr: float = 10.0,
        steps: int = 100,
        batch_size: int | str | None = 128,
        **options: Any,
    ) -> LRFindResult:
        """The learning-rate range test on `train` (xnet/train/lr_find.py): `steps` lrs from start_lr to
        end_lr, one step each, over at most one epoch; everything is restored afterwards.

        Returns the sweep (lrs, losses, smoothed) and `suggestion`, a peak lr. `options`: beta, diverge,
        method, width of `range_test`."""
        if self.optimizer is None:
            raise ValueError("Trainer.lr_find needs an optimizer: this Trainer was built with optimizer=None")
        check_bounds(start_lr, end_lr, "Trainer.lr_find")  # before the data is moved to the device
        loader = training_loader(train, batch_size, self.backend, self.seed, self.model.dtype)
        checked, width = self._checked
        if checked is not loader:
            width = self.check_model(loader)
        self._check_targets_once(loader, width)
        return range_test(self, loader, start_lr, end_lr, steps, **options)

    def penalty(self) -> float:
        """The regularisation penalty of the current weights (0 without regularizers)."""
        regs = getattr(self.optimizer, "regularizers", None) or ()
        params = self.model.parameters()
        return float(sum(self.backend.item(r.penalty(params)) for r in regs))

    def _reported_penalty(self) -> float:
        """The penalty as reported losses hold it: per term of a training batch with a summed loss."""
        penalty = self.penalty()
        return penalty / self._batch_terms if self.loss.reduction == "sum" else penalty

    # -- evaluation -------------------------------------------------------------------------------

    def predict(self, x: Array) -> Array:
        """Model outputs for a device batch, in evaluation mode: (N, ...) -> (N, K)."""
        with self.model.evaluating():
            return self.model.forward(x)

    def _epoch_eval(self, data: Any) -> EvalResult:
        """fit's evaluation of `data`: `evaluate` in one process; each rank its share when data-parallel."""
        loader = self._eval_loader(data)
        rows = self.parallel.eval_rows(loader.n)
        if rows is None:
            return self.evaluate(data)
        return self._evaluate(loader, rows)

    def evaluate(self, data: Any, batch_size: int = 1000) -> EvalResult:
        """Loss (with penalty), accuracy, confusion matrix and per-class scores on `data`.

        The whole set, also on a rank of data-parallel training (fit's per-epoch evaluation shares it out)."""
        return self._evaluate(self._eval_loader(data, batch_size), None)

    def _evaluate(self, loader: DataLoader, rows: tuple[int, int] | None) -> EvalResult:
        check_reduction(self.loss, "Trainer.evaluate")
        return evaluate_loader(
            self.model, self.loss, self.backend, loader, classify=self._is_classification(loader),
            penalty=self._reported_penalty(), num_classes=self.meta.get("num_classes"), rows=rows,
            parallel=self.parallel,
        )  # fmt: skip

    # -- state ---------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimizer, schedule position, RNG."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng": self.backend.rng.state_dict(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "history": self.history,
            "partial": self._partial,
            "early_stopping": self.early_stopping.state_dict() if self.early_stopping else None,
            "best": best.state_dict() if (best := best_checkpoint(self)) else None,
            "schedule": learning.state_dict() if (learning := learning_schedule(self.schedule)) else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict()` (possibly saved on another backend)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.backend.rng.load_state_dict(state["rng"])
        self.epoch, self.step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])
        self.global_step = int(state["global_step"])
        self.history = History(state["history"])
        self._partial = dict(state["partial"])
        if self.early_stopping is not None and state.get("early_stopping"):
            self.early_stopping.load_state_dict(state["early_stopping"])
        best = best_checkpoint(self)
        if best is not None and state.get("best"):
            best.load_state_dict(state["best"])
        learning = learning_schedule(self.schedule)
        if learning is not None and state.get("schedule"):
            learning.load_state_dict(state["schedule"])

    def save(self, path: str | Path | None) -> None:
        """Write a checkpoint (trainer state plus `meta`) atomically; no-op when path is None."""
        if path is not None:
            save_checkpoint(path, {**self.meta, "trainer": self.state_dict()})

    # -- stopping (Ctrl-C, SIGTERM, ...: xnet/train/stop_signals.py) -----------------------------------

    def request_stop(self) -> None:
        """Ask a running `fit` to stop after its current step, with a checkpoint, as Ctrl-C does."""
        self._stop.request()

    def _interrupt(self) -> None:
        """fit stops here, on every rank at the same step: note why."""
        self.interrupted = True
        self.stop_signal = self.parallel.stop_signal(self._stop.signum)
