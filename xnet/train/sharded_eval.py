"""fit's per-epoch evaluation as one rank of data-parallel training: its share of the set, the ranks' sums added."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xnet.data.loader import DataLoader
from xnet.train.metrics import EvalResult

if TYPE_CHECKING:
    from xnet.train.trainer import Trainer


def evaluate_share(trainer: Trainer, loader: DataLoader, rows: tuple[int, int]) -> EvalResult:
    """Loss (with penalty) and accuracy of the whole of `loader`, from this rank's rows lo..hi of it.

    Every rank calls this at the same point with its own share (maybe empty: it still takes part in
    the all-reduce), and one all-reduce of (loss sum, correct, samples) gives every rank the same
    result: one process's, the loss summed in another order. No confusion matrix or predictions:
    `Trainer.evaluate` gives those, evaluating the whole set.
    """
    model, loss, backend = trainer.model, trainer.loss, trainer.backend
    classify = trainer._is_classification(loader)
    loss_sum, correct, seen = 0.0, 0, 0
    was = model.training
    model.eval()
    try:
        for xb, yb in loader.eval_batches(rows=rows):
            out = model.forward(xb)
            value = loss.forward(out, yb)
            loss_sum = loss_sum + value * (xb.shape[0] * loss.mean_factor())  # per term, as in fit
            seen += xb.shape[0]
            if classify:
                correct = correct + backend.xp.count_nonzero(loss.predict(out) == loss.target_classes(yb))
    finally:
        model.train(was)
    total_loss, total_correct, total = trainer.parallel.totals(
        backend, loss_sum, correct, seen, classify, "adding up the evaluation"
    )
    # the penalty depends on the weights alone, the same on every rank: added once, after the sum
    result = EvalResult(loss=total_loss / total + trainer._reported_penalty())
    if classify:
        result.accuracy = total_correct / total
    return result
