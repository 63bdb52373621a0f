"""Training: the Trainer loop, callbacks, metrics, checkpoints, early stopping, progress reporters, lr_find."""

from xnet.train.callbacks import Callback, CallbackError, LambdaCallback
from xnet.train.checkpoint import load_checkpoint, save_checkpoint
from xnet.train.early_stopping import EarlyStopping
from xnet.train.lr_find import LRFindResult
from xnet.train.metrics import ClassReport, EvalResult, confusion_matrix
from xnet.train.trainer import Trainer

__all__ = [
    "Callback",
    "CallbackError",
    "ClassReport",
    "EarlyStopping",
    "EvalResult",
    "LRFindResult",
    "LambdaCallback",
    "Trainer",
    "confusion_matrix",
    "load_checkpoint",
    "save_checkpoint",
]
