"""MSE on raw outputs, and SoftmaxMSE: squared error of softmax outputs against class targets."""

from __future__ import annotations

from xnet.backends import Array
from xnet.losses.base import Loss, size_of
from xnet.nn.activations import softmax, softmax_backward


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
        if size_of(target) and num_outputs > 1 and target.ndim == 1 and self._is_labels(target):
            self._check_label_range(target, num_outputs, owner)

    def forward(self, outputs: Array, target: Array) -> Array:  # type: ignore[override]
        """Outputs (N, ...), targets as described in the class -> 0-d loss, or the outputs' shape for "none"."""
        diff = outputs - self._targets(outputs, target)
        return self._reduce(diff * diff, diff * 2.0, size_of(outputs))


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
        return self._reduce(diff * diff, softmax_backward(self.xp, p, diff * 2.0), size_of(outputs))

    def _backward_terms(self, grad: Array) -> Array:
        """d sum(grad * (p - t)^2) / d logits: every p of a row depends on every logit of the row."""
        p, diff = self._p_diff
        return softmax_backward(self.xp, p, diff * 2.0 * grad)
