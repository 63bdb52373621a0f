"""Losses: cross-entropy fused with softmax, MSE, MSE on softmax outputs, binary cross-entropy.

A loss is a Module (it gets its backend from `build_on` and moves with `.to()`):
`forward(outputs, target)` returns the loss and caches what `backward()` needs; `backward()`
returns d loss / d outputs, the same shape as `outputs`.

`reduction` says how the terms combine, as in PyTorch and Keras: "mean" (the default) averages
them, "sum" adds them, "none" returns them unreduced, (N,) for cross-entropy and shaped like the
outputs for the elementwise losses (MSE, softmax-MSE, BCE); "mean" and "sum" are the mean and sum
of that array. After a "none" forward, `backward(grad)` takes d(something)/d(each term), shaped
like the terms. A sum over a batch of N samples is N times the mean for cross-entropy (N * K for
the elementwise losses on K outputs), and so is its gradient.

Targets are integer class labels (N,) or float arrays shaped like the outputs (one-hot or soft).
`classifies(target)` tells a trainer whether accuracy means anything for these targets, and
`predict(outputs)` turns outputs into integer class labels for that accuracy.
"""

from __future__ import annotations

import inspect
from typing import Any

from xnet.backends import Array
from xnet.nn.activations import softmax, softmax_backward
from xnet.nn.module import Module

REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")


def check_reduction(owner: str, reduction: object) -> str:
    """One of REDUCTIONS; ValueError (TypeError for a non-string) naming `owner` otherwise."""
    if not isinstance(reduction, str):
        raise TypeError(f"{owner}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"{owner}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}")
    return reduction


class Loss(Module):
    """Base of the losses: forward(outputs, target) -> the reduced loss, backward() -> d loss/d outputs."""

    is_classification = False
    _type = ""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(type(self).__name__, reduction)
        self._terms = 1  # how many terms the last forward had: "mean" divides their sum by it
        self._term_shape: tuple[int, ...] = ()  # the shape of the last forward's unreduced terms
        # targets are value-checked on every call (integer labels in range, soft targets finite and
        # >= 0, BCE targets in [0, 1]), which reads one boolean back to the host (a GPU sync); a
        # trainer that validated its data set once with `check_targets` turns this off
        self.check_labels = True
        self._grad: Array | None = None
        self._class_row: Array | None = None  # (1, K) class indices for one-hot, kept between calls
        self._last_dtype: tuple[Any, bool] = (None, False)  # (target dtype, is it integral)

    def _on_backend_change(self) -> None:
        self._class_row = None

    def __call__(self, outputs: Array, target: Array) -> Array:  # type: ignore[override]
        return self.forward(outputs, target)

    def forward(self, outputs: Array, target: Array) -> Array:  # type: ignore[override]
        """(N, ...) outputs and targets -> the loss: 0-d ("mean", "sum") or the terms ("none")."""
        raise NotImplementedError

    def backward(self, grad: Array | float | None = None) -> Array:  # type: ignore[override]
        """d loss / d outputs for the last forward, shaped like the outputs.

        After a "none" forward, `grad` is required: the gradient with respect to each term, shaped
        like the terms, (N,) or the outputs' shape. After "mean" or "sum" it may be a scalar factor.
        """
        g = self._cached(self._grad)
        if self.reduction == "none":
            return self._backward_terms(self._term_grad(grad))
        if grad is None:
            return g
        if hasattr(grad, "shape") and tuple(grad.shape) != ():
            raise ValueError(
                f"{self._name()}.backward: the loss is one number ({self.reduction}), so grad must be a scalar, "
                f"got shape {tuple(grad.shape)}"
            )
        return g * grad

    def _term_grad(self, grad: Array | float | None) -> Array:
        """`grad` for "none" as an array that broadcasts against the outputs' gradient."""
        shape = self._term_shape
        if grad is None:
            raise ValueError(
                f"{self._name()}.backward: with reduction='none' the loss is {shape} terms, not one number; "
                f"pass their gradient, backward(grad) with grad of shape {shape} (or use 'mean' or 'sum')"
            )
        grad = self.backend.asarray(grad, self.dtype)
        if tuple(grad.shape) != shape:
            raise ValueError(
                f"{self._name()}.backward: grad must have the shape of the terms {shape}, got {tuple(grad.shape)}"
            )
        # (N,) terms of cross-entropy scale whole rows of the (N, K) gradient
        return self.xp.reshape(grad, shape + (1,) * (len(self._grad.shape) - len(shape)))

    def _backward_terms(self, grad: Array) -> Array:
        """d sum(grad * terms) / d outputs; each term depends on its own output (SoftmaxMSE overrides)."""
        return self._grad * grad

    def _reduce(self, terms: Array, grad_of_sum: Array, count: int) -> Array:
        """The loss under `reduction`, from the unreduced `terms` (`count` of them) and d sum(terms) / d outputs."""
        self._terms = count
        if self.reduction == "none":
            self._term_shape = tuple(terms.shape)
            self._grad = grad_of_sum
            return terms
        total = self.xp.sum(terms)
        if self.reduction == "mean":
            inv = 1.0 / max(count, 1)  # an empty batch has loss 0, not NaN
            grad_of_sum *= inv
            total = total * inv
        self._grad = grad_of_sum
        return total

    def mean_factor(self) -> float:
        """What turns the last forward's loss into the mean over its terms: 1 for "mean", 1/terms for "sum"."""
        if self.reduction == "none":
            raise ValueError(f"{self._name()}: reduction='none' gives the terms, not one number to rescale")
        return 1.0 if self.reduction == "mean" else 1.0 / max(self._terms, 1)

    def terms_per_sample(self, outputs_per_sample: int) -> int:
        """How many terms one sample adds: 1 for cross-entropy, one per output for the elementwise losses."""
        return outputs_per_sample

    def classifies(self, target: Array) -> bool:
        """Whether accuracy means something here: a classification loss, or integer labels."""
        return self.is_classification or self._is_labels(target)

    def predict(self, outputs: Array) -> Array:
        """(N, K) outputs -> (N,) int64 predicted classes (argmax over the last axis)."""
        return self.xp.argmax(outputs, axis=-1)

    def target_classes(self, target: Array) -> Array:
        """Targets as the classes `predict` is compared with for accuracy: labels (N,) as they are,
        one-hot or soft rows (N, K) as their argmax."""
        return target if target.ndim == 1 else self.xp.argmax(target, axis=-1)

    def config(self) -> dict[str, Any]:
        """{"type": name, options that differ from their defaults}."""
        cfg: dict[str, Any] = {"type": self._type}
        if self.reduction != "mean":
            cfg["reduction"] = self.reduction
        return cfg

    def check_targets(self, target: Array, num_outputs: int, owner: str = "") -> None:
        """Scan a whole data set's targets once: ValueError if this loss cannot use them.

        Class losses: integer labels in [0, num_outputs), float (soft) targets finite and >= 0. A few
        reductions read back to the host: run it once per data set (the Trainer does, then turns
        `check_labels` off), not per step.
        """
        target = self.backend.asarray(target)
        if _size(target) == 0:
            return
        if self._is_labels(target):
            self._check_label_range(target, num_outputs, owner)
        else:
            self._check_soft(target, owner)

    # -- shared input handling -----------------------------------------------------------------

    def _is_labels(self, target: Array) -> bool:
        # isdtype costs microseconds on NumPy and this runs every step: remember the last answer
        dt = target.dtype
        if dt is not self._last_dtype[0]:
            self._last_dtype = (dt, bool(self.xp.isdtype(dt, "integral")))
        return self._last_dtype[1]

    def _name(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"

    def _prefix(self, owner: str) -> str:
        return f"{owner}: " if owner else ""

    def _check_label_range(self, labels: Array, k: int, owner: str = "") -> None:
        """ValueError unless every integer label lies in [0, k) (one reduction read back; details on failure)."""
        xp, item = self.xp, self.backend.item
        if not item(xp.all((labels >= 0) & (labels < k))):
            lo, hi = int(item(xp.min(labels))), int(item(xp.max(labels)))
            raise ValueError(
                f"{self._prefix(owner)}labels must lie in [0, {k}) for {self._name()} with {k} classes, "
                f"the data has labels from {lo} to {hi}"
            )

    def _check_soft(self, target: Array, owner: str = "") -> None:
        """ValueError unless float (one-hot or soft) targets are finite and >= 0, as probabilities are."""
        xp, item = self.xp, self.backend.item
        if target.dtype == xp.bool:
            return
        if not item(xp.all(xp.isfinite(target) & (target >= 0))):
            lo, hi = item(xp.min(target)), item(xp.max(target))
            raise ValueError(
                f"{self._prefix(owner)}{self._name()}: float targets are class probabilities (one-hot or soft) "
                f"and must be finite and >= 0, got values from {lo:g} to {hi:g}"
            )

    def _one_hot(self, outputs: Array, labels: Array) -> Array:
        """Integer labels (N,) -> one-hot (N, K) in the outputs' dtype, built on the device."""
        N, K = outputs.shape
        if labels.shape == (N, K):
            raise ValueError(
                f"{self._name()}: integer targets of shape {tuple(labels.shape)}: (N, K) targets must be float "
                f"(one-hot or soft probabilities); integer targets are class labels of shape ({N},)"
            )
        if labels.shape != (N,):
            raise ValueError(
                f"{self._name()}: integer labels must have shape ({N},) for outputs "
                f"{tuple(outputs.shape)}, got {tuple(labels.shape)}"
            )
        if self.check_labels and N > 0:
            xp, item = self.xp, self.backend.item
            # one small reduction read back per call (a sync on GPUs); details only on failure
            if not item(xp.all((labels >= 0) & (labels < K))):
                lo, hi = int(item(xp.min(labels))), int(item(xp.max(labels)))
                bad = lo if lo < 0 else hi
                raise ValueError(
                    f"{self._name()}: label {bad} is outside [0, {K}) for outputs with {K} classes"
                )
        row = self._class_row
        if row is None or row.shape[1] != K or row.dtype != labels.dtype:
            row = self._class_row = self.backend.arange(K, labels.dtype)[None, :]
        return self.xp.astype(labels[:, None] == row, outputs.dtype)

    def _class_targets(self, outputs: Array, target: Array, labels: bool | None = None) -> Array:
        """Outputs (N, K) with labels (N,) or float targets (N, K) -> float targets (N, K).

        `labels` is `_is_labels(target)` when the caller knows it (and has put target on the device).
        """
        if labels is None:
            target = self.backend.asarray(target)
            labels = self._is_labels(target)
        if outputs.ndim != 2:
            raise ValueError(
                f"{self._name()}: expected outputs (N, K), got shape {tuple(outputs.shape)}"
            )
        if labels:
            return self._one_hot(outputs, target)
        if target.shape != outputs.shape:
            raise ValueError(
                f"{self._name()}: expected targets as integer labels ({outputs.shape[0]},) or "
                f"a float array {tuple(outputs.shape)}, got {tuple(target.shape)} of {target.dtype}"
            )
        if self.check_labels and outputs.shape[0] > 0:
            self._check_soft(target)
        return target


class CrossEntropy(Loss):
    """Softmax cross-entropy on logits (N, K); targets labels (N,) or distributions (N, K).

    loss_n = sum_k -q_nk log softmax(z_n)_k, one term per sample, with q smoothed to
    (1 - s) q + s / K when label_smoothing s > 0; "mean" averages over the N samples. The softmax
    is fused in and computed with log-sum-exp, so logits of any size give finite values; the
    gradient of the sum is softmax(z) * sum_k q - q, i.e. softmax - q for targets that sum to one.
    """

    is_classification = True
    _type = "cross-entropy"

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "mean"):
        super().__init__(reduction)
        if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                f"CrossEntropy: label_smoothing must be in [0, 1), got {label_smoothing!r}"
            )
        self.label_smoothing = float(label_smoothing)

    def terms_per_sample(self, outputs_per_sample: int) -> int:
        """One term per sample, whatever the number of classes."""
        return 1

    def forward(self, outputs: Array, target: Array) -> Array:  # type: ignore[override]
        """Logits (N, K), targets (N,) int or (N, K) float -> 0-d loss, or (N,) with reduction "none"."""
        xp = self.xp
        target = self.backend.asarray(target)
        labels = self._is_labels(target)
        q = self._class_targets(outputs, target, labels)
        N, K = outputs.shape
        if self.label_smoothing:
            s = self.label_smoothing
            q = q * (1.0 - s) + s / K
        shifted = outputs - xp.max(outputs, axis=-1, keepdims=True)
        e = xp.exp(shifted)
        sum_e = xp.sum(e, axis=-1, keepdims=True)
        g = e / sum_e  # softmax
        if labels:
            # one-hot and smoothed label rows sum to 1: -sum q (shifted - log sum_e) per row is
            # log sum_e - sum q shifted, and the gradient softmax - q
            terms = xp.log(sum_e[:, 0]) - xp.sum(q * shifted, axis=-1)
            g -= q
        else:  # soft targets might not sum to 1: the exact forms
            terms = -xp.sum(q * (shifted - xp.log(sum_e)), axis=-1)
            g = g * xp.sum(q, axis=-1, keepdims=True) - q
        return self._reduce(terms, g, N)

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        if self.label_smoothing:
            cfg["label_smoothing"] = self.label_smoothing
        return cfg


class MSE(Loss):
    """Squared error (y - t)^2, one term per output element, (N, ...) -> 0-d (the mean by default).

    Targets: the outputs' shape; (N,) for outputs (N, 1) (a column of regression targets); or
    integer labels (N,) for outputs (N, K > 1), which become one-hot, so MSE can train a
    classifier. With integer labels `classifies()` is True and the trainer reports accuracy.
    """

    _type = "mse"

    def _targets(self, outputs: Array, target: Array) -> Array:
        target = self.backend.asarray(target)
        if outputs.ndim == 2 and outputs.shape[1] > 1 and self._is_labels(target):
            return self._one_hot(outputs, target)
        if self._is_labels(target):
            target = self.xp.astype(target, outputs.dtype)
        if outputs.ndim == 2 and outputs.shape[1] == 1 and target.shape == (outputs.shape[0],):
            target = self.xp.reshape(target, outputs.shape)
        if target.shape != outputs.shape:
            raise ValueError(
                f"{self._name()}: expected targets of shape {tuple(outputs.shape)} (or integer "
                f"labels ({outputs.shape[0]},) for class outputs), got {tuple(target.shape)}"
            )
        return target

    def check_targets(self, target: Array, num_outputs: int, owner: str = "") -> None:
        """Integer labels for class outputs (num_outputs > 1) must lie in [0, num_outputs); regression
        targets may be any number."""
        target = self.backend.asarray(target)
        if _size(target) and num_outputs > 1 and target.ndim == 1 and self._is_labels(target):
            self._check_label_range(target, num_outputs, owner)

    def forward(self, outputs: Array, target: Array) -> Array:  # type: ignore[override]
        """Outputs (N, ...), targets as described in the class -> 0-d loss, or the outputs' shape for "none"."""
        diff = outputs - self._targets(outputs, target)
        return self._reduce(diff * diff, diff * 2.0, _size(outputs))


class SoftmaxMSE(Loss):
    """Squared error between softmax(logits) (N, K) and one-hot/soft targets, one term per element.

    Kept for the classic comparison with cross-entropy: its gradient vanishes when the softmax
    saturates on a wrong class, which is why cross-entropy trains classifiers faster.
    """

    is_classification = True
    _type = "softmax-mse"

    def forward(self, outputs: Array, target: Array) -> Array:  # type: ignore[override]
        """Logits (N, K), targets (N,) int or (N, K) float -> 0-d loss, or (N, K) for "none"."""
        t = self._class_targets(outputs, target)
        p = softmax(self.xp, outputs)
        diff = p - t
        self._p_diff = (p, diff)  # a term depends on its whole row: "none"'s backward needs both
        # chain rule through the softmax: the Jacobian-vector product with d sum / d p; it is linear
        # in 2 diff, so _reduce's 1/size for "mean" may scale the result afterwards
        return self._reduce(diff * diff, softmax_backward(self.xp, p, diff * 2.0), _size(outputs))

    def _backward_terms(self, grad: Array) -> Array:
        """d sum(grad * (p - t)^2) / d logits: every p of a row depends on every logit of the row."""
        p, diff = self._p_diff
        return softmax_backward(self.xp, p, diff * 2.0 * grad)


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy on logits z, targets t in [0, 1] of the same shape (or (N,) for (N, 1)).

    One term per element, max(z, 0) - z t + log(1 + exp(-|z|)), stable for any z; the gradient of
    their sum is sigmoid(z) - t. Several columns are independent (multi-label) problems.
    """

    is_classification = True
    _type = "bce"
    _numeric_dtype: Any = None  # the last target dtype found numeric

    def check_targets(self, target: Array, num_outputs: int, owner: str = "") -> None:
        """Every target must lie in [0, 1] (0/1 labels or probabilities); NaN fails too."""
        t = self._numeric(self.backend.asarray(target))
        if _size(t):
            self._check_unit_range(t, owner)

    def _numeric(self, t: Array) -> Array:
        """TypeError for targets that are not numbers (strings, objects)."""
        # isdtype costs microseconds on NumPy: remember the last dtype that passed
        if t.dtype is not self._numeric_dtype:
            if not self.xp.isdtype(t.dtype, ("bool", "integral", "real floating")):
                raise TypeError(f"{self._name()}: targets must be numbers in [0, 1], got dtype {t.dtype}")
            self._numeric_dtype = t.dtype
        return t

    def _check_unit_range(self, t: Array, owner: str = "") -> None:
        xp, item = self.xp, self.backend.item
        if t.dtype == xp.bool:
            return
        if not item(xp.all((t >= 0) & (t <= 1))):
            lo, hi = item(xp.min(t)), item(xp.max(t))
            raise ValueError(
                f"{self._prefix(owner)}{self._name()}: targets must lie in [0, 1] (0/1 labels or probabilities), "
                f"got values from {lo:g} to {hi:g}"
            )

    def forward(self, outputs: Array, target: Array) -> Array:  # type: ignore[override]
        """Logits (N,) / (N, 1) / (N, K), targets of the same shape -> 0-d loss, or the logits' shape for "none"."""
        xp = self.xp
        t = self.backend.asarray(target)
        if self._is_labels(t) or t.dtype != outputs.dtype:
            t = xp.astype(self._numeric(t), outputs.dtype)
        if self.check_labels and _size(t):
            self._check_unit_range(t)
        if outputs.ndim == 2 and outputs.shape[1] == 1 and t.shape == (outputs.shape[0],):
            t = xp.reshape(t, outputs.shape)
        if t.shape != outputs.shape:
            raise ValueError(
                f"{self._name()}: expected targets of shape {tuple(outputs.shape)}, "
                f"got {tuple(t.shape)}"
            )
        z = outputs
        terms = xp.maximum(z, 0.0) - z * t + xp.log1p(xp.exp(-xp.abs(z)))
        return self._reduce(terms, 0.5 * (1.0 + xp.tanh(0.5 * z)) - t, _size(z))

    def target_classes(self, target: Array) -> Array:
        """Targets as 0/1 decisions (t > 0.5), shaped like `predict`'s: (N, 1) squeezed to (N,)."""
        xp = self.xp
        if target.ndim == 2 and target.shape[1] == 1:
            target = xp.reshape(target, (target.shape[0],))
        return xp.astype(target > 0.5, xp.int64)

    def predict(self, outputs: Array) -> Array:
        """Logits -> int64 0/1 decisions (z > 0), (N, 1) squeezed to (N,)."""
        xp = self.xp
        if outputs.ndim == 2 and outputs.shape[1] == 1:
            outputs = xp.reshape(outputs, (outputs.shape[0],))
        return xp.astype(outputs > 0, xp.int64)


def _size(a: Array) -> int:
    n = 1
    for d in a.shape:
        n *= d
    return n


_LOSSES: dict[str, type[Loss]] = {
    "cross-entropy": CrossEntropy,
    "mse": MSE,
    "softmax-mse": SoftmaxMSE,
    "bce": BinaryCrossEntropy,
}
LOSSES: tuple[str, ...] = tuple(_LOSSES)
_ALIASES = {
    "cross_entropy": "cross-entropy",
    "crossentropy": "cross-entropy",
    "ce": "cross-entropy",
    "softmax_mse": "softmax-mse",
    "binary-cross-entropy": "bce",
    "binary_cross_entropy": "bce",
}


def get_loss(name: str, **kwargs: Any) -> Loss:
    """A new loss by name ('cross-entropy', 'ce', 'mse', 'softmax-mse', 'bce'); kwargs to it."""
    key = name.strip().lower() if isinstance(name, str) else None
    key = _ALIASES.get(key, key) if key is not None else None
    if key not in _LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(LOSSES)}")
    cls = _LOSSES[key]
    valid = list(inspect.signature(cls).parameters)
    unknown = [k for k in kwargs if k not in valid]
    if unknown:
        takes = f"accepts: {', '.join(valid)}" if valid else "takes no options"
        raise TypeError(f"get_loss({key!r}): unknown option(s) {unknown}; {cls.__name__} {takes}")
    return cls(**kwargs)


__all__ = [
    "LOSSES",
    "REDUCTIONS",
    "MSE",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "Loss",
    "SoftmaxMSE",
    "check_reduction",
    "get_loss",
]
