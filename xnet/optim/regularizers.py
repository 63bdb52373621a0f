"""L1 and L2 penalties on weights: a loss term to report and a gradient term to add."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from xnet.backends import Array
from xnet.checks import check_bool
from xnet.nn.parameter import Parameter
from xnet.optim.arrays import namespace_of
from xnet.optim.checks import check_nonneg


class Regularizer:
    """A penalty on parameters. By default only weights (`Parameter.regularize` is True);
    `include_all=True` also penalises biases and batch-norm scales/shifts.

    `penalty(params)` is the loss term (for reporting; the optimizer adds its gradient itself),
    `apply(params)` adds the term's gradient into each `p.grad`.
    """

    name = "regularizer"

    def __init__(self, lam: float, include_all: bool = False):
        self.lam = check_nonneg(type(self).__name__, "lam", lam)
        self.include_all = check_bool(type(self).__name__, "include_all", include_all)

    def _targets(self, params: Iterable[Parameter]) -> list[Parameter]:
        if self.include_all:
            return list(params)
        return [p for p in params if p.regularize]

    def _term(self, xp, w: Array) -> Array:
        raise NotImplementedError

    def _grad(self, xp, w: Array) -> Array:
        raise NotImplementedError

    def penalty(self, params: Iterable[Parameter]) -> Array | float:
        """The penalty over `params` as a 0-d device array (0.0 when no parameter is penalised)."""
        total = None
        for p in self._targets(params):
            term = self._term(namespace_of(p.data), p.data)
            total = term if total is None else total + term
        return 0.0 if total is None else total

    def apply(self, params: Sequence[Parameter]) -> None:
        """Add the penalty's gradient into `p.grad` of each penalised parameter, in place."""
        if self.lam == 0:
            return
        for p in self._targets(params):
            p.grad += self._grad(namespace_of(p.data), p.data)

    def config(self) -> dict:
        """JSON-able description, e.g. {"type": "l2", "lam": 1e-4}."""
        cfg = {"type": self.name, "lam": self.lam}
        if self.include_all:
            cfg["include_all"] = True
        return cfg

    def __repr__(self) -> str:
        extra = ", include_all=True" if self.include_all else ""
        return f"{type(self).__name__}({self.lam!r}{extra})"


class L2(Regularizer):
    """Penalty lam/2 * ||w||^2; gradient lam * w."""

    name = "l2"

    def _term(self, xp, w: Array) -> Array:
        v = xp.reshape(w, (-1,))
        return (0.5 * self.lam) * xp.vecdot(v, v)

    def _grad(self, xp, w: Array) -> Array:
        return self.lam * w


class L1(Regularizer):
    """Penalty lam * ||w||_1; gradient lam * sign(w) (0 at w == 0)."""

    name = "l1"

    def _term(self, xp, w: Array) -> Array:
        return self.lam * xp.sum(xp.abs(w))

    def _grad(self, xp, w: Array) -> Array:
        return self.lam * xp.sign(w)


REGULARIZERS = {"l1": L1, "l2": L2}


def total_penalty(regularizers: Iterable[Regularizer], params: Iterable[Parameter]) -> Array | float:
    """Sum of every regulariser's penalty over `params` (0.0 when there is nothing to add)."""
    params = list(params)
    total: Array | float = 0.0
    for r in regularizers:
        total = total + r.penalty(params)
    return total
