"""Training: the Trainer loop, metrics, checkpoints, early stopping and progress reporters."""

from xnet.train.checkpoint import load_checkpoint, save_checkpoint
from xnet.train.early_stopping import EarlyStopping
from xnet.train.metrics import ClassReport, EvalResult, confusion_matrix
from xnet.train.trainer import Trainer

__all__ = [
    "ClassReport",
    "EarlyStopping",
    "EvalResult",
    "Trainer",
    "confusion_matrix",
    "load_checkpoint",
    "save_checkpoint",
]
