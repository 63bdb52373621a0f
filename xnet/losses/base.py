"""The base of every loss: the reduction ("mean", "sum", "none"), backward, target checks and one-hot."""

from __future__ import annotations

from typing import Any

from xnet.backends import Array
from xnet.nn.module import Module, set_cache

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

    def _reduce(self, terms: Array, grad_of_sum: Array, count: int, scaled: bool = False) -> Array:
        """The loss under `reduction`, from the unreduced `terms` (`count` of them) and d sum(terms) / d outputs
        (already times `grad_scale(count)` when `scaled`: a fused kernel folds the mean's factor in)."""
        set_cache(self, "_terms", count)
        if self.reduction == "none":
            self._term_shape = tuple(terms.shape)
            self._grad = grad_of_sum
            return terms
        total = self.xp.sum(terms)
        if self.reduction == "mean":
            inv = self.grad_scale(count)
            if not scaled:
                grad_of_sum *= inv
            total = total * inv
        set_cache(self, "_grad", grad_of_sum)
        return total

    def grad_scale(self, count: int) -> float:
        """What `_reduce` multiplies d sum(terms) / d outputs by: 1 / count for "mean" (1 for an empty batch,
        whose loss is 0, not NaN), else 1."""
        return 1.0 / max(count, 1) if self.reduction == "mean" else 1.0

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

    def correct(self, outputs: Array, classes: Array) -> Any:
        """How many rows of `outputs` (N, ...) `predict` gives as `classes` (N,): a count (on the device)."""
        return self.xp.count_nonzero(self.predict(outputs) == classes)

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
        if size_of(target) == 0:
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
        """Integer labels (N,) -> one-hot (N, K) in the outputs' dtype, checked, built on the device."""
        self._check_labels(outputs, labels)
        return self._one_hot_rows(outputs, labels)

    def _check_labels(self, outputs: Array, labels: Array) -> None:
        """ValueError unless integer labels (N,) fit outputs (N, K): shape, and values in [0, K) when check_labels."""
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

    def _one_hot_rows(self, outputs: Array, labels: Array) -> Array:
        """Checked integer labels (N,) -> one-hot (N, K) in the outputs' dtype, built on the device."""
        K = outputs.shape[1]
        row = self._class_row
        if row is None or row.shape[1] != K or row.dtype != labels.dtype:
            row = self._class_row = self.backend.arange(K, labels.dtype)[None, :]
        return self.xp.astype(labels[:, None] == row, outputs.dtype)

    def _class_targets(
        self, outputs: Array, target: Array, labels: bool | None = None, build: bool = True
    ) -> Array | None:
        """Outputs (N, K) with labels (N,) or float targets (N, K) -> float targets (N, K).

        `labels` is `_is_labels(target)` when the caller knows it (and has put target on the device).
        Without `build` the targets are only checked, as they would be, and None comes back.
        """
        if labels is None:
            target = self.backend.asarray(target)
            labels = self._is_labels(target)
        if outputs.ndim != 2:
            raise ValueError(
                f"{self._name()}: expected outputs (N, K), got shape {tuple(outputs.shape)}"
            )
        if labels and not build:
            self._check_labels(outputs, target)
            return None
        if labels:
            return self._one_hot(outputs, target)
        if target.shape != outputs.shape:
            raise ValueError(
                f"{self._name()}: expected targets as integer labels ({outputs.shape[0]},) or "
                f"a float array {tuple(outputs.shape)}, got {tuple(target.shape)} of {target.dtype}"
            )
        if self.check_labels and outputs.shape[0] > 0:
            self._check_soft(target)
        return target if build else None


def size_of(a: Array) -> int:
    """The number of elements of `a`."""
    n = 1
    for d in a.shape:
        n *= d
    return n
