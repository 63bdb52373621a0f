"""Classification metrics from predicted and true labels (host arrays, computed once per evaluation)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    idx = y_true.astype(np.int64) * num_classes + y_pred.astype(np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass
class ClassReport:
    """Per-class precision, recall, F1 and support from a confusion matrix."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    @classmethod
    def from_confusion(cls, cm: np.ndarray) -> ClassReport:
        """Scores per class; a class never predicted (or never present) scores 0, not NaN."""
        tp = np.diag(cm).astype(np.float64)
        predicted = cm.sum(axis=0)
        actual = cm.sum(axis=1)
        precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
        recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
        return cls(precision, recall, f1, actual)


@dataclass
class EvalResult:
    """What `Trainer.evaluate` returns: loss, and for classification accuracy and the details."""

    loss: float
    accuracy: float | None = None
    confusion: np.ndarray | None = None
    report: ClassReport | None = None
    predictions: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-able form for `--json` and metrics files."""
        out: dict = {"loss": self.loss, "accuracy": self.accuracy}
        if self.confusion is not None and self.report is not None:
            out["confusion_matrix"] = self.confusion.tolist()
            out["per_class"] = [
                {
                    "class": k,
                    "precision": float(self.report.precision[k]),
                    "recall": float(self.report.recall[k]),
                    "f1": float(self.report.f1[k]),
                    "support": int(self.report.support[k]),
                }
                for k in range(len(self.report.f1))
            ]
        return out
