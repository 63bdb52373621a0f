"""Batches: one pass over a DataLoader's batches, which can gather the next batch on an idle core."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from xnet.backends import Array, Backend

Batch = tuple[Array, Array | None]
# a batch's samples lo..hi of the epoch's order, and for a rank of several its batch_rows (else None)
Span = tuple[int, int, tuple[int, int, int] | None]


class Source(Protocol):
    """What Batches needs of its DataLoader (loader.py)."""

    backend: Backend
    batch_rows: tuple[int, int, int]

    def take(self, perm: Array | None, lo: int, hi: int) -> Batch: ...

    def batch_bytes(self, n: int) -> int: ...

    def shard_draws(self) -> AbstractContextManager: ...


class Batches(Iterator[Batch]):
    """The batches (xb, yb) of `spans`: samples lo..hi of `perm` (None: the stored order), each
    augmented (training batches) as it is served.

    prefetch() starts gathering the next batch on an idle core while the caller goes on; the
    batch served next is the same either way, and augmentation (which draws random numbers) still
    runs when it is served, in the same order.
    """

    def __init__(self, loader: Source, perm: Array | None, spans: Iterable[Span], augment: Any = None):
        self._loader, self._perm, self._augment = loader, perm, augment
        self._spans = iter(spans)
        self._ahead: tuple[Span, Callable[[], Batch] | None] | None = None  # the next batch, when prefetched
        # whether the backend would gather a batch in the background at all (decided at the first
        # prefetch, from its size): a small batch is served as if never prefetched, at no cost a step
        self._worth: bool | None = None

    def __next__(self) -> Batch:
        if self._ahead is not None:
            span, take = self._ahead
            self._ahead = None
        else:
            span = next(self._spans)
            take = None
        lo, hi, rows = span
        loader = self._loader
        if rows is not None:
            loader.batch_rows = rows
        xb, yb = take() if take is not None else loader.take(self._perm, lo, hi)
        if self._augment is not None:
            with loader.shard_draws():
                xb = self._augment(xb, loader.backend)
        return xb, yb

    def prefetch(self) -> None:
        """Start gathering the next shuffled batch on an idle core (Backend.background: the CPU
        backend's worker thread), if there is one and it is not started yet. A training step calls
        it after its forward: the loss and the last layers' backward leave the other core idle, and
        the gather (a 128x784 batch: ~40 us of the ~700 us step of workload 1) leaves the step's path."""
        if self._ahead is not None or self._perm is None or self._worth is False:  # stored order: views
            return
        span = next(self._spans, None)
        if span is None:
            return
        lo, hi, _ = span
        loader, perm = self._loader, self._perm
        nbytes = loader.batch_bytes(hi - lo)
        if self._worth is None:
            self._worth = loader.backend.background_worth(nbytes)
            if not self._worth:
                self._ahead = (span, None)  # served as usual
                return
        self._ahead = (span, loader.backend.background(lambda: loader.take(perm, lo, hi), nbytes))
