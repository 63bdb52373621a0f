"""The one evaluation loop: loss, accuracy and (for the whole set) the confusion matrix of a model on a loader.

Trainer.evaluate runs it over the whole set; fit's per-epoch evaluation on one rank of data-parallel
training runs it over that rank's rows and adds the ranks' sums (one all-reduce).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xnet.backends import Backend
from xnet.data.loader import DataLoader
from xnet.losses import Loss
from xnet.nn.module import Module
from xnet.train.metrics import ClassReport, EvalResult, confusion_matrix


def evaluate_loader(
    model: Module,
    loss: Loss,
    backend: Backend,
    loader: DataLoader,
    *,
    classify: bool,
    penalty: float,
    num_classes: int | None = None,
    rows: tuple[int, int] | None = None,
    parallel: Any = None,
) -> EvalResult:
    """Loss (per term, plus `penalty`) and accuracy of `model` on every sample of `loader`.

    rows=None: this process evaluates the whole set, and a classifier's result also holds the
    confusion matrix, per-class scores and predictions. rows=(lo, hi): this rank evaluates those rows
    (maybe none: it still takes part in the all-reduce) and `parallel.totals` adds the ranks' sums, so
    every rank gets one process's result (the loss summed in another order) without the matrix.
    """
    xp = backend.xp
    whole = rows is None
    loss_sum, correct, seen, preds = 0.0, 0, 0, []
    with model.evaluating():
        for xb, yb in loader.eval_batches(rows=rows):  # every sample, in order, even from a training loader
            out = model.forward(xb)
            value = loss.forward(out, yb)
            loss_sum = loss_sum + value * (xb.shape[0] * loss.mean_factor())  # per term, as in fit
            seen += xb.shape[0]
            if classify and whole:
                preds.append(loss.predict(out))
            elif classify:
                correct = correct + xp.count_nonzero(loss.predict(out) == loss.target_classes(yb))
    if not whole:
        total_loss, total_correct, total = parallel.totals(
            backend, loss_sum, correct, seen, classify, "adding up the evaluation"
        )
        # the penalty depends on the weights alone, the same on every rank: added once, after the sum
        result = EvalResult(loss=total_loss / total + penalty)
        if classify:
            result.accuracy = total_correct / total
        return result
    result = EvalResult(loss=backend.item(loss_sum) / seen + penalty)
    if classify:
        y_pred = backend.to_numpy(xp.concat(preds))
        y_true = backend.to_numpy(loss.target_classes(loader.y)).astype(np.int64)
        k = int(num_classes or max(y_true.max(), y_pred.max()) + 1)
        cm = confusion_matrix(y_true, y_pred, k)
        result.accuracy = float(np.trace(cm) / seen)
        result.confusion, result.report, result.predictions = cm, ClassReport.from_confusion(cm), y_pred
    return result
