"""One training epoch of a Trainer: the per-step body (forward, backward, sync, step), its running sums,
reporting, divergence, mid-epoch checkpoints and stops.

Trainer.fit runs it once per epoch (xnet/train/trainer.py); it reads and updates that trainer's
counters and the partial sums an interrupted epoch resumes from, so it is the trainer's own loop
body kept in its own file, not an API of its own.
"""

from __future__ import annotations

import math
import time
from typing import Any

from xnet.data.loader import DataLoader
from xnet.errors import DivergedError
from xnet.train.preflight import check_finite_data


def train_epoch(trainer: Any, loader: DataLoader, epoch: int, epochs: int) -> dict[str, Any] | None:
    """One epoch of `trainer`'s steps on `loader`; returns its record, or None when interrupted."""
    backend, model, loss = trainer.backend, trainer.model, trainer.loss
    opt, schedule = trainer.optimizer, trainer.schedule
    classify = trainer._is_classification(loader)
    # one-hot or soft targets (N, K): accuracy compares with their argmax (decided once, not per step)
    as_classes = classify and loader.y.ndim != 1
    if trainer.step_in_epoch == 0:
        # reseeding per epoch makes an epoch-boundary resume exact on every backend
        backend.rng.seed(trainer.seed, epoch)
        trainer._partial = {"loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0, "lr": None}
    loader.set_epoch(epoch)
    model.train()
    steps = len(loader)
    cbs = trainer._callbacks
    cbs.on_epoch_begin(epoch, {"epochs": epochs, "steps": steps})
    p, par = trainer._partial, trainer.parallel
    loss_sum, correct, seen = par.carried(p)
    skip, t0, t_report = trainer.step_in_epoch, time.perf_counter(), time.perf_counter()
    batches = iter(loader)
    sharded = loader.ranks > 1  # decided once: entering a context costs a microsecond a step
    for i, (xb, yb) in enumerate(batches):
        if i < skip:
            continue
        if schedule is not None:
            opt.lr = schedule.lr_at(trainer.global_step)
        if p["lr"] is None:
            p["lr"] = float(opt.lr)
        if sharded:
            with loader.shard_draws():  # one rank of several draws what one process would
                out = model.forward(xb)
        else:
            out = model.forward(xb)
        # the next batch is gathered on the other core while the loss and the last layers' backward run
        batches.prefetch()
        value = loss.forward(out, yb)
        opt.zero_grad()
        model.backward(loss.backward())
        # every rank learns here whether any was asked to stop or is due a checkpoint (one process: its own)
        due = trainer.checkpoint_path is not None and trainer.cadence.due(trainer.global_step + 1)
        stop, save = par.sync_gradients(trainer._stop.requested, loader, loss, due)
        opt.step()
        n = xb.shape[0]
        # accumulated on the device; read back once per reporting interval
        # (a summed loss is reported as the mean over its terms: mean_factor is 1 / terms then, else 1)
        loss_sum = loss_sum + value * (n * loss.mean_factor())
        if classify:
            truth = loss.target_classes(yb) if as_classes else yb
            correct = correct + loss.correct(out, truth)
        seen += n
        trainer.global_step += 1
        trainer.step_in_epoch = i + 1
        last = i + 1 == steps
        if last or (i + 1) % trainer.log_every == 0 or stop:
            total_loss, total_correct, total_seen = par.totals(backend, loss_sum, correct, seen, classify)
            running = total_loss / total_seen
            if not math.isfinite(running):
                check_finite_data(backend, loader, running, epoch, i + 1)
                raise DivergedError(
                    f"training diverged: the loss became {running} at epoch {epoch}, "
                    f"step {i + 1} of {steps}; try a lower learning rate (--lr)"
                )
            now = time.perf_counter()
            logs = {"loss": running, "epoch": epoch, "step_in_epoch": i + 1, "steps": steps,
                    "samples_per_s": total_seen / max(now - t0, 1e-9)}  # fmt: skip
            cbs.on_batch_end(trainer.global_step, logs)
            t_report = now
        if par.stop_after_step(stop, trainer._stop.requested):
            if last:  # the epoch ends anyway: fit stops after its checkpoint
                trainer._stop_at_boundary = True
            else:
                trainer._partial = _in_epoch(trainer, p, loss_sum, correct, seen, classify, t0)
                return None
        elif save and not last:  # the epoch's end writes its own checkpoint
            trainer._partial = _in_epoch(trainer, p, loss_sum, correct, seen, classify, t0)
            trainer.save(trainer.checkpoint_path)
            trainer.cadence.saved()
            trainer._partial = p  # the epoch goes on from its own sums
    del t_report
    total_loss, total_correct, total_seen = par.totals(backend, loss_sum, correct, seen, classify)
    par.sync_buffers(model)
    penalty = trainer._reported_penalty()
    return {
        "epoch": epoch,
        "train_loss": total_loss / total_seen + penalty,
        "train_accuracy": (total_correct / total_seen) if classify else None,
        "lr": p["lr"] if p["lr"] is not None else float(opt.lr),
        "lr_end": float(opt.lr),
        "seconds": p["seconds"] + time.perf_counter() - t0,
    }


def _in_epoch(
    trainer: Any, p: dict[str, Any], loss_sum: Any, correct: Any, seen: int, classify: bool, t0: float
) -> dict[str, Any]:
    """The unfinished epoch's sums as a checkpoint keeps them (over every rank; batch-norm statistics agreed)."""
    sums = trainer.parallel.partial_sums(trainer.backend, loss_sum, correct, seen, classify)
    trainer.parallel.sync_buffers(trainer.model)
    return {**sums, "seconds": p["seconds"] + time.perf_counter() - t0, "lr": p["lr"]}
