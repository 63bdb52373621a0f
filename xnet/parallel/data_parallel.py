"""What a Trainer does differently as one of N ranks training one model, and the one-process default.

The Trainer calls these few methods at fixed points of its loop, the same on every rank, so the
ranks' collectives always pair up:

- `shard(loader)` once: the loader serves this rank's equal part of every global batch;
- `sync_gradients(...)` once per step, between backward and the optimizer's update: one
  all-reduce of the flat gradient buffer (which also carries stop signals and checkpoint
  requests), so every rank applies the same update and the weights stay bit-identical;
- `totals(...)` at each progress report: the running loss and accuracy of the global batches;
- `eval_rows(n)` and `totals(...)` at each evaluation in `fit`: each rank evaluates its
  contiguous share of the set and one all-reduce adds up the ranks' sums, so every rank gets
  the same result (and so the same records, early-stopping decisions and checkpoints);
- `sync_buffers(model)` at the end of each epoch, before evaluation and checkpoints: batch
  norm's running statistics, which per-rank statistics let drift apart, averaged over the ranks;
- `stop_signal(signum)` when training stops: which signal stopped it, as one rank received it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xnet.backends import Array, Backend
from xnet.data.loader import DataLoader
from xnet.nn.batchnorm import _BatchNorm
from xnet.nn.module import Module
from xnet.parallel.gradients import GradientBuffer, loss_reduction
from xnet.parallel.world import World


def eval_share(n: int, rank: int, ranks: int) -> tuple[int, int]:
    """Rows lo..hi of an evaluation set of `n` samples that rank `rank` of `ranks` evaluates.

    The shares are contiguous, disjoint and cover the set in rank order; their sizes differ by one
    at most, and some are empty when there are fewer samples than ranks."""
    return n * rank // ranks, n * (rank + 1) // ranks


class SingleProcess:
    """The one-process trainer: every hook leaves things as they are (Trainer's default)."""

    rank, size, is_root = 0, 1, True

    def shard(self, loader: DataLoader) -> DataLoader:
        """The training loader as it is."""
        return loader

    def start(self, model: Module, optimizer: Any) -> None:
        """Nothing to prepare."""

    def sync_gradients(self, stop: bool, loader: DataLoader, loss: Any, checkpoint: bool = False) -> tuple[bool, bool]:
        """No other rank: the gradients are the batch's, the stop and checkpoint requests this process's."""
        return stop, checkpoint

    def stop_after_step(self, agreed: bool, requested: bool) -> bool:
        """Whether to stop after this step: one process heeds a Ctrl-C that came at any time in it."""
        return requested

    def totals(
        self, backend: Backend, loss_sum: Any, correct: Any, seen: int, classify: bool,
        what: str = "adding up the training loss",
    ) -> tuple[float, int, int]:
        """(sum of per-sample losses, correct predictions, samples) as Python numbers (one host read)."""
        return backend.item(loss_sum), int(backend.item(correct)) if classify else 0, seen

    def eval_rows(self, n: int) -> tuple[int, int] | None:
        """The rows of an evaluation set of `n` samples this process evaluates: None, the whole set as always."""
        return None

    def check_batches(self, loader: DataLoader) -> None:
        """Any batch size suits one process."""

    def check_batch_norm(self, model: Module, batch: int) -> None:
        """Nothing to add to the Trainer's own check: one process normalises over the whole batch."""

    def carried(self, partial: dict[str, Any]) -> tuple[float, int, int]:
        """The sums an interrupted epoch had reached, to continue from."""
        return partial["loss_sum"], partial["correct"], partial["seen"]

    def partial_sums(
        self, backend: Backend, loss_sum: Any, correct: Any, seen: int, classify: bool
    ) -> dict[str, Any]:
        """The unfinished epoch's sums as a checkpoint keeps them: loss_sum, correct, seen (of every rank)."""
        total_loss, total_correct, total_seen = self.totals(backend, loss_sum, correct, seen, classify)
        return {"loss_sum": total_loss, "correct": total_correct, "seen": total_seen}

    def sync_buffers(self, model: Module) -> None:
        """Nothing to agree on."""

    def stop_signal(self, signum: int | None) -> int | None:
        """The signal that stopped training: this process's."""
        return signum


class DataParallel(SingleProcess):
    """This rank's part in training one model on `world.size` ranks (see the module docstring).

    sync_batch_norm: batch norm normalises with the global batch's statistics (all-reducing its
    moments in every forward and its gradient sums in every backward), as one process would;
    otherwise each rank uses its shard's, as PyTorch's DistributedDataParallel does.
    """

    def __init__(self, world: World, sync_batch_norm: bool = False):
        self.world = world
        self.rank, self.size, self.is_root = world.rank, world.size, world.is_root
        self.sync_batch_norm = bool(sync_batch_norm)
        self.grads: GradientBuffer | None = None
        self._reduce: Callable[[Array], None] | None = None

    def device(self, spec: str) -> str:
        """The device this rank trains on: with "cuda" (or "auto" finding one), its own GPU, the rank
        on this node modulo the GPUs visible; any other spec as given."""
        if spec.strip().lower() not in ("cuda", "gpu", "cupy", "auto"):
            return spec
        from xnet.backends import BackendUnavailable
        from xnet.backends.cupy_backend import import_cupy

        try:
            count = import_cupy().cuda.runtime.getDeviceCount()
        except (BackendUnavailable, RuntimeError):
            return spec  # "auto" falls back to the CPU, "cuda" fails with its usual line
        return f"cuda:{self.world.local_rank % max(count, 1)}"

    def check_batches(self, loader: DataLoader) -> None:
        """ValueError unless every batch splits into `size` equal shards of at least one sample."""
        batch = min(loader.batch_size, loader.n)
        if batch % self.size:
            raise ValueError(
                f"--batch-size {batch} is not divisible by the {self.size} ranks: each rank trains on an equal share "
                f"of every batch; use a multiple of {self.size}"
                + (f" (or fewer ranks than the {batch} samples of a batch)" if batch < self.size else "")
            )

    def check_batch_norm(self, model: Module, batch: int) -> None:
        """ValueError when per-rank batch norm would normalise 1 value per channel in a training step.

        Each rank normalises its share of the batch (`batch // size` samples) on its own, so a share of
        one sample leaves BatchNorm1D one value per feature, and BatchNorm2D one per channel when its
        input is 1x1: training would fail at its first step. Call after a forward pass (the layers'
        input shapes are known then)."""
        share = batch // self.size
        if self.sync_batch_norm or share != 1:
            return
        for m in model.modules():
            if isinstance(m, _BatchNorm) and m.values_per_channel(share) == 1:
                raise ValueError(
                    f"--batch-size {batch} on {self.size} ranks gives each rank 1 sample per step, and {m._name} "
                    "normalises each rank's share on its own (1 value per channel, it needs 2 or more): "
                    f"pass --sync-batch-norm, or a --batch-size of at least {2 * self.size}"
                )

    def shard(self, loader: DataLoader) -> DataLoader:
        """A copy of `loader` that serves this rank's shard of every global batch (`check_batches` it first)."""
        return loader.sharded(self.rank, self.size)

    def start(self, model: Module, optimizer: Any) -> None:
        """The optimizer's gradients into one flat buffer; synchronised batch norm hooked in when asked for."""
        backend = model.backend
        if self.grads is None or self.grads.optimizer is not optimizer:
            self.grads = GradientBuffer(optimizer, backend)
            host = backend.host_buffer(self.grads.flat)
            if host is not None:
                self._reduce = lambda flat: self.world.allreduce(host, "averaging gradients")
            else:  # a GPU: NCCL or CUDA-aware MPI (not yet run on a GPU, see nccl.py)
                from xnet.parallel.nccl import device_all_reduce

                self._reduce = device_all_reduce(self.world, backend)
        if self.sync_batch_norm:
            from xnet.parallel.sync_batchnorm import MomentSync

            sync = MomentSync(self.world, backend)
            for m in model.modules():
                if isinstance(m, _BatchNorm):
                    m.sync = sync

    def sync_gradients(self, stop: bool, loader: DataLoader, loss: Any, checkpoint: bool = False) -> tuple[bool, bool]:
        """One all-reduce: the global batch's gradient in every `p.grad`; (any rank asked to stop, any rank's
        checkpoint is due)."""
        # mean-reduced losses: the global mean is the mean of the equal shards' means
        weight = 1.0 / self.size if loss_reduction(loss) == "mean" else 1.0
        return self.grads.all_reduce(weight, stop, self._reduce, checkpoint)

    def stop_after_step(self, agreed: bool, requested: bool) -> bool:
        """What every rank agreed in this step's all-reduce: a Ctrl-C that came later counts at the next step."""
        return agreed

    def totals(
        self, backend: Backend, loss_sum: Any, correct: Any, seen: int, classify: bool,
        what: str = "adding up the training loss",
    ) -> tuple[float, int, int]:
        """Summed over the ranks: the global batches' (or evaluation shares') loss sum, correct and samples."""
        local = np.array(super().totals(backend, loss_sum, correct, seen, classify), np.float64)
        self.world.allreduce(local, what)
        return float(local[0]), int(local[1]), int(local[2])

    def eval_rows(self, n: int) -> tuple[int, int]:
        """This rank's contiguous share lo..hi of an evaluation set of `n` samples (maybe empty: it still
        takes part in the all-reduce that adds up the shares)."""
        return eval_share(n, self.rank, self.size)

    def carried(self, partial: dict[str, Any]) -> tuple[float, int, int]:
        """Each rank its own sums when as many ranks saved them; else rank 0 the global sums, the others zero."""
        ranks = partial.get("ranks")
        if isinstance(ranks, list) and len(ranks) == self.size:
            # each rank goes on adding in the order it would have without the stop: the same rounding
            loss_sum, correct, seen = ranks[self.rank]
            return loss_sum, correct, seen
        return super().carried(partial) if self.is_root else (0.0, 0, 0)

    def partial_sums(
        self, backend: Backend, loss_sum: Any, correct: Any, seen: int, classify: bool
    ) -> dict[str, Any]:
        """The global sums, and each rank's own (`ranks`), which a resume on as many ranks continues from."""
        sums = super().partial_sums(backend, loss_sum, correct, seen, classify)
        mine = SingleProcess.totals(self, backend, loss_sum, correct, seen, classify)
        sums["ranks"] = [list(r) for r in self.world.allgather_objects(mine, "saving the epoch's sums")]
        return sums

    def stop_signal(self, signum: int | None) -> int | None:
        """The signal that stopped training, the same on every rank: the lowest rank's that received one."""
        return next((s for s in self.world.allgather_objects(signum, "agreeing on the stop signal") if s), None)

    def sync_buffers(self, model: Module) -> None:
        """Average batch norm's running statistics over the ranks (identical already when synchronised)."""
        if self.sync_batch_norm:
            return
        layers = [m for m in model.modules() if isinstance(m, _BatchNorm)]
        if not layers:
            return
        b = model.backend
        parts = [b.to_numpy(getattr(m, name)) for m in layers for name in m.buffer_names]
        flat = np.concatenate([p.ravel() for p in parts]).astype(np.float64)
        self.world.allreduce(flat, "averaging batch-norm statistics")
        flat /= self.size
        offset = 0
        for m in layers:
            for name in m.buffer_names:
                old = getattr(m, name)
                n = old.shape[0]
                setattr(m, name, b.asarray(flat[offset : offset + n], old.dtype))
                offset += n


__all__ = ["DataParallel", "SingleProcess"]
