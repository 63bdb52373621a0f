"""DataLoader: a dataset moved to the device once, served in seeded shuffled batches there."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import array_api_compat
import numpy as np

from xnet.backends import Array, Backend, get_backend
from xnet.backends.rng import Stream, check_seed
from xnet.checks import check_bool, check_int
from xnet.data.batches import Batch, Batches, Span
from xnet.data.pixels import Pixels, normalize_batch, scaling_constants


def _batch_size(batch_size: Any, n: int) -> int:
    """An int >= 1 from batch_size (None or "full" = all n samples); ValueError otherwise."""
    if batch_size is None or batch_size == "full":
        return max(n, 1)
    if isinstance(batch_size, (bool, float)) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(
            f"DataLoader: batch_size must be an integer >= 1, None or 'full'; got {batch_size!r}"
        )
    if batch_size < 1:
        raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
    return int(batch_size)


def _drop_last(value: Any) -> bool | str:
    """False, True or "single" (drop a last batch only when it holds one sample); ValueError otherwise."""
    if isinstance(value, str) and value == "single":
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"DataLoader: drop_last must be True, False or 'single'; got {value!r}")


def _is_real(a: Any) -> bool:
    """Whether `a` (a host or device array) holds bools, ints or real floats: not objects, strings or complex."""
    dt = a.dtype
    if isinstance(dt, np.dtype):  # NumPy and CuPy
        return dt.kind in "biuf"
    try:
        return bool(array_api_compat.array_namespace(a).isdtype(dt, ("bool", "integral", "real floating")))
    except TypeError:
        return False


def _samples(a: Any, name: str) -> Any:
    """`a` as an array of samples (N, ...) of real numbers (a list becomes a NumPy array); else TypeError/ValueError."""
    if not (hasattr(a, "shape") and hasattr(a, "dtype")):
        try:
            a = np.asarray(a)  # a list or a scalar
        except ValueError as e:  # ragged lists
            raise ValueError(f"DataLoader: {name} must be an array of samples (N, ...): {e}") from None
    if len(a.shape) == 0:
        raise ValueError(f"DataLoader: {name} must be an array of samples (N, ...), got a 0-d {type(a).__name__}")
    if not _is_real(a):
        raise TypeError(f"DataLoader: {name} must hold real numbers (bool, int or float), got dtype {a.dtype}")
    return a


def _check_args(shuffle: Any, seed: Any, augment: Any, dtype: Any) -> None:
    """TypeError/ValueError naming the argument: a string is not a bool, a float not a seed."""
    check_bool("DataLoader", "shuffle", shuffle)
    check_int("DataLoader", "seed", seed)
    check_seed(seed, "DataLoader: seed")
    if augment is not None and not callable(augment):
        raise TypeError(f"DataLoader: augment must be a callable augment(xb, backend) or None, got {augment!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"DataLoader: dtype must be 'float32' or 'float64', got {dtype!r}")


def _is_integer(a: Any) -> bool:
    dt = getattr(a, "dtype", None)
    if isinstance(a, np.ndarray) or dt is None:
        return np.asarray(a).dtype.kind in "iub"
    return "int" in str(dt)


class DataLoader:
    """Batches (xb, yb) of device arrays; x (N, ...) and y (N, ...) or None.

    The host arrays are copied to `backend`'s device once, here. x may be `Pixels` (raw uint8
    images and their normalisation): then the device holds the uint8 rows (`self.x`, a quarter of
    the float32 size) and every batch served is normalised as it is gathered, to the same bits as
    the float32 array would give (`inputs(lo, hi)` gives any rows so). Each epoch's order is drawn on
    the device from the "shuffle" random stream of (seed, epoch), which gives the same bits on
    every backend, so the same seed gives the same batches in the same order on every run and
    every device, and any process can compute any epoch's order. Each batch is gathered on the
    device with xp.take (on NumPy a take per batch measured faster than permuting the whole
    epoch at once: 17 vs 26 ms per MNIST epoch, and no second full-size copy). Unshuffled
    batches of a float array are views of the stored arrays: do not modify them in place.

    drop_last: False keeps the last partial batch, True drops it (as PyTorch's), "single" drops
    it only when it holds exactly one sample and is not the only batch: batch norm cannot train
    on one sample, and the Trainer iterates its training data this way. eval_batches() always
    keeps every sample. `augment(xb, backend)` is applied to shuffled training batches only.

    Iterating gives `Batches` (data/batches.py), whose `prefetch()` starts gathering the next
    shuffled batch on an idle core (the Trainer calls it after each forward).

    `sharded(rank, ranks)` gives the loader one rank of data-parallel training iterates: every
    global batch (the same on every rank: the order depends on the seed and epoch only) is cut
    into `ranks` equal shards and this rank's is served.
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        batch_size: int | str | None,
        backend: Backend | str,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool | str = False,
        augment: Callable[..., Array] | None = None,
        dtype: str = "float32",
    ):
        _check_args(shuffle, seed, augment, dtype)
        self.backend = get_backend(backend)
        pixels = x if isinstance(x, Pixels) else None
        x = x.raw if pixels is not None else _samples(x, "x")
        y = None if y is None else _samples(y, "y")
        n = int(x.shape[0])
        if y is not None and int(y.shape[0]) != n:
            raise ValueError(f"DataLoader: x has {n} samples but y has {int(y.shape[0])}")
        self.n = n
        self.batch_size = _batch_size(batch_size, n)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = _drop_last(drop_last)
        self.augment = augment
        self.dtype = dtype
        # the stored inputs on the device: the float array, or the uint8 rows of Pixels
        self.x = self.backend.asarray(x, dtype if pixels is None else None)
        self.normalization = None if pixels is None else pixels.normalization
        # a sample's bytes as batches serve it (in `dtype`, Pixels normalised too): batch_bytes, every step
        self._sample_bytes = math.prod(self.x.shape[1:]) * np.dtype(dtype).itemsize
        self._scaling = (None, None) if pixels is None else scaling_constants(self.backend, pixels.normalization)
        if y is None:
            self.y = None
        else:
            self.y = self.backend.asarray(y, "int64" if _is_integer(y) else dtype)
        self.epoch = 0
        self.rank, self.ranks = 0, 1
        self.batch_rows = (0, 0, 0)  # the last training batch served: its rows lo..hi of a global batch of total

    def inputs(self, lo: int, hi: int) -> Array:
        """The inputs (hi-lo, ...) of samples lo..hi-1 as batches serve them (a view for a float array)."""
        return self._normalized(self.x[lo:hi, ...])

    def _normalized(self, xb: Array) -> Array:
        if self.normalization is None:
            return xb
        return normalize_batch(self.backend.xp, xb, *self._scaling, self.dtype)

    def _gathered(self, rows: Array) -> Array:
        """The inputs of samples `rows` (B,): Pixels gathered as uint8 (4x fewer bytes) and normalised,
        in one compiled pass where the backend has it (float32 batches: the same bits)."""
        norm = self.normalization
        if norm is not None and self.dtype == "float32":
            xb = self.backend.fused_take_normalized(self.x, rows, norm.offset, norm.scale)
            if xb is not None:
                return xb
        return self._normalized(self.backend.xp.take(self.x, rows, axis=0))

    def sharded(self, rank: int, ranks: int) -> DataLoader:
        """A copy serving rank `rank`'s shard (batch_size // ranks samples) of every batch; ValueError
        unless the batches split into `ranks` equal shards. A last partial batch is trained on only
        when it too splits into equal shards of at least 2 samples (for ranks=1: holds 2 or more)."""
        check_int("DataLoader.sharded", "ranks", ranks, minimum=1)
        check_int("DataLoader.sharded", "rank", rank, minimum=0)
        if rank >= ranks:
            raise ValueError(f"DataLoader.sharded: rank must be below ranks={ranks}, got {rank}")
        batch = min(self.batch_size, self.n)
        if batch % ranks:
            raise ValueError(f"DataLoader.sharded: a batch of {batch} does not split into {ranks} equal shards")
        out = copy.copy(self)
        out.rank, out.ranks = rank, ranks
        return out

    def shard_draws(self) -> AbstractContextManager:
        """A context in which random draws over this rank's rows of the last batch served equal those
        rows of the draw for the whole global batch (dropout masks, augmentation): so N ranks
        draw what one process would."""
        batch_shard = getattr(self.backend.rng, "batch_shard", None)
        if self.ranks == 1 or batch_shard is None:
            # an rng without batch_shard (before the counter-based stream) draws each rank's own
            return nullcontext()
        return batch_shard(*self.batch_rows)

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self._drops_rest(self.batch_size, self.drop_last, self.ranks) else 0)

    def __repr__(self) -> str:
        return (
            f"DataLoader(n={self.n}, batch_size={self.batch_size}, batches={len(self)}, "
            f"shuffle={self.shuffle}, backend={self.backend.name})"
        )

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration uses (iterating advances it by one)."""
        self.epoch = int(epoch)

    def permutation(self, epoch: int) -> Array:
        """The sample order of `epoch`, (N,) int64 on the device: the "shuffle" stream of (seed, epoch)."""
        return Stream(self.backend, self.seed, "shuffle", epoch=int(epoch)).permutation(self.n)

    def __iter__(self) -> Batches:
        """This epoch's batches (the order of `set_epoch`'s epoch, then the next)."""
        epoch = self.epoch
        self.epoch += 1
        perm = self.permutation(epoch) if self.shuffle else None
        return Batches(self, perm, self._spans(self.batch_size, self.drop_last, self.ranks), self.augment)

    def eval_batches(self, batch_size: int | str | None = None, rows: tuple[int, int] | None = None) -> Iterator[Batch]:
        """Every sample once in stored order, no augmentation, last batch kept (evaluation); with `rows`
        (lo, hi), only samples lo..hi-1 (one rank's share of a data-parallel evaluation; none when lo == hi)."""
        size = self.batch_size if batch_size is None else _batch_size(batch_size, self.n)
        if rows is None:
            yield from Batches(self, None, self._spans(size, False, 1))
            return
        lo, hi = rows
        if not 0 <= lo <= hi <= self.n:
            raise ValueError(f"DataLoader.eval_batches: rows must satisfy 0 <= lo <= hi <= {self.n}, got {rows}")
        for i in range(lo, hi, size):
            j = min(i + size, hi)
            yield self.inputs(i, j), None if self.y is None else self.y[i:j, ...]

    def _drops_rest(self, size: int, drop_last: bool | str, ranks: int = 1) -> bool:
        """Whether batches of `size` leave out the last partial batch (the n % size samples after the full ones).

        Split over `ranks`, it must give each rank an equal share, of 2 samples at least with "single"
        (which for one rank drops a last batch of exactly one sample: batch norm cannot train on it)."""
        rest = self.n % size
        if not rest:
            return False
        if rest % ranks:
            return True
        if drop_last == "single":
            return rest // ranks < 2 and self.n > size
        return bool(drop_last)

    def _spans(self, size: int, drop_last: bool | str, ranks: int) -> Iterator[Span]:
        """(lo, hi, batch_rows) of every batch of `size`: its samples lo..hi of the epoch's order (for a rank
        of several, its equal shard, and its rows of the global batch; else None)."""
        stop = self.n - self.n % size if self._drops_rest(size, drop_last, ranks) else self.n
        for i in range(0, stop, size):
            j = min(i + size, self.n)  # the standard leaves out-of-bounds slice stops undefined
            if ranks == 1:
                yield i, j, None
                continue
            part = (j - i) // ranks  # this rank's equal shard of the global batch i..j
            yield i + part * self.rank, i + part * (self.rank + 1), (part * self.rank, part * (self.rank + 1), j - i)

    def batch_bytes(self, n: int) -> int:
        """The bytes of n samples' inputs as batches serve them (in `dtype`, Pixels normalised too)."""
        return n * self._sample_bytes

    def take(self, perm: Array | None, lo: int, hi: int) -> Batch:
        """Samples lo..hi of the order `perm` (None: the stored order, as views of a float array), not augmented."""
        if perm is None:
            return self.inputs(lo, hi), None if self.y is None else self.y[lo:hi, ...]
        rows = perm[lo:hi]
        return self._gathered(rows), None if self.y is None else self.backend.xp.take(self.y, rows, axis=0)
