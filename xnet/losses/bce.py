"""BinaryCrossEntropy on logits: independent 0/1 (or probability) targets per output."""

from __future__ import annotations

from typing import Any

from xnet.backends import Array
from xnet.losses.base import Loss, size_of


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
        if size_of(t):
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
        if self.check_labels and size_of(t):
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
        return self._reduce(terms, 0.5 * (1.0 + xp.tanh(0.5 * z)) - t, size_of(z))

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
