"""CrossEntropy: softmax cross-entropy on logits, fused, with label smoothing."""

from __future__ import annotations

from typing import Any

from xnet.backends import Array
from xnet.losses.base import Loss
from xnet.nn.module import set_cache


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
        # what one (logits, targets) signature of shapes and dtypes decided, checked once: whether the
        # targets are labels, and the backend's kernels for them (Backend.fused_cross_entropy) or None
        self._checked: tuple[Any, ...] = ()
        self._labels = False
        self._kernels: Any = None
        # (logits, labels, how many rows had their label as argmax) from the last forward's kernel
        self._hits: tuple[Array, Array, int] | None = None

    def correct(self, outputs: Array, classes: Array) -> Any:
        """As Loss.correct; for the very arrays of the last forward, the count its kernel made."""
        hits = self._hits
        if hits is not None and hits[0] is outputs and hits[1] is classes:
            return hits[2]
        return super().correct(outputs, classes)

    def _on_backend_change(self) -> None:
        super()._on_backend_change()
        self._checked, self._kernels = (), None  # asked for again on the new backend

    def terms_per_sample(self, outputs_per_sample: int) -> int:
        """One term per sample, whatever the number of classes."""
        return 1

    def forward(self, outputs: Array, target: Array) -> Array:  # type: ignore[override]
        """Logits (N, K), targets (N,) int or (N, K) float -> 0-d loss, or (N,) with reduction "none"."""
        xp = self.xp
        target = self.backend.asarray(target)
        # shapes and dtypes are checked once per signature, label values on every call (check_labels)
        signature = (outputs.shape, outputs.dtype, target.shape, target.dtype)
        if signature != self._checked or self.check_labels:
            labels = self._is_labels(target)
            self._class_targets(outputs, target, labels, build=False)
            if signature != self._checked:
                kernels = self.backend.fused_cross_entropy(outputs.shape, outputs.dtype) if labels else None
                self._checked, self._labels, self._kernels = signature, labels, kernels
        labels = self._labels
        N, K = outputs.shape
        # a backend kernel computing the row terms and gradient at once (CuPy: one launch for about a dozen)
        scale = self.grad_scale(N)
        fused = None
        if self._kernels is not None:
            fused = self._kernels.run(outputs, target, self.label_smoothing, scale)
        # the kernel counted the rows it predicts right as it went: `correct` answers from that count
        set_cache(self, "_hits", None if fused is None else (outputs, target, self._kernels.hits))
        if fused is None:
            fused = self.backend.fused_softmax_cross_entropy(outputs, target, self.label_smoothing, scale)
        if fused is not None:
            return self._reduce(*fused, N, scaled=True)
        q = self._one_hot_rows(outputs, target) if labels else target
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
