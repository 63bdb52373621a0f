"""Random numbers that do not depend on the device: named Philox streams and the draws made from them.

Every random number xnet draws comes from a stream named by (seed, stream name, epoch): the
bits are Philox-4x64-10 words (philox.py), identical on every backend, and each draw turns
them into numbers with the same integer and float operations everywhere:

  uniform    float64: the top 53 bits of a word times 2**-53; float32: the top 24 bits times
             2**-24 (exact in either type), then low + (high - low) * u.
  normal     Box-Muller: z[2k] = r cos(2 pi u2) + mean, z[2k+1] = r sin(2 pi u2) + mean with
             r = sqrt(-2 ln u1) * std,
             u1 = 1 - bits53(w[2k]) (in (0, 1]) and u2 = bits53(w[2k+1]) in float64; in float32 one
             word per pair, u1 = 1 - bits24(w[k] >> 40), u2 = bits24(w[k] >> 8) (so the tails stop at
             5.8 standard deviations, where 2M draws expect 0.02 values beyond).
  bernoulli  1 where the top 53 bits of a word are below floor(p * 2**53).
  integers   low + ((w >> 32) * (high - low)) >> 32 (Lemire's multiply-shift; its bias is below
             (high - low) / 2**32, far below what any use here could notice).
  permutation  the indices sorted by their word's top bits (the index fills the low bits, so no
             two keys tie and every sort gives the same order).

Integer results and the masks are bit-identical on every backend; uniforms too (exact
products and one correctly rounded multiply-add); normals go through log, cos and sin, which
libraries round differently in the last bit or two, and are identical to within that.

Each consumer has its own stream, so adding a dropout layer does not change the shuffle order:
"init" (initialisers), "shuffle" (the DataLoader, epoch = the epoch), "dropout", "augment",
"split" (the validation split), "sine" (the synthetic set) and "default" (Rng's own draws, for
users' code). A stream's position is the number of words it has used; each draw starts at a
multiple of 4 (a Philox block). The state of an Rng is the seed, the epoch and the positions.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Protocol


class Backend(Protocol):
    """What a stream needs of its backend (base.Backend has it): a protocol, as base.py imports this module."""

    xp: ModuleType
    device: Any

    def dtype(self, name: str | Any) -> Any: ...
    def random_words(self, key: tuple[int, int], epoch: int, start: int, n: int) -> Any: ...

Shape = tuple[int, ...]
GENERATOR = "philox4x64-10"
SEED_LIMIT = 1 << 63
_TWO_PI = 2.0 * math.pi


def stream_id(name: str) -> int:
    """The 64-bit id of stream `name`, the second half of its Philox key: the start of SHA-256(name)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def check_seed(seed: Any, what: str = "seed") -> int:
    """`seed` as an int in [0, 2**63); ValueError naming `what` otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, int) and not hasattr(seed, "__index__"):
        raise ValueError(f"{what} must be an integer in [0, 2**63), got {seed!r}")
    seed = int(seed)
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{what} must be an integer in [0, 2**63), got {seed}")
    return seed


def _size(shape: Shape) -> int:
    return math.prod(shape)


def bernoulli_threshold(p: float) -> int:
    """A word gives 1 in a Bernoulli(p) draw when its top 53 bits are below this: floor(p * 2**53)."""
    return int(float(p) * 2.0**53)


class Stream:
    """One named stream on a backend: Philox words keyed (seed, stream_id(name)), in epoch `epoch`.

    `shard` (lo, hi, total), set by `Rng.batch_shard`, makes a draw whose first axis has hi - lo
    rows return rows lo..hi of the same draw made with `total` rows, and advance as that draw
    would: a data-parallel rank then gets exactly its part of the single-process numbers.
    """

    def __init__(self, backend: Backend, seed: int, name: str, epoch: int = 0, position: int = 0):
        self.backend = backend
        self.name = name
        self.key = (check_seed(seed), stream_id(name))
        self.epoch = int(epoch)
        self.position = int(position)
        self.shard: tuple[int, int, int] | None = None

    def __repr__(self) -> str:
        return f"Stream({self.name!r}, seed={self.key[0]}, epoch={self.epoch}, position={self.position})"

    # -- where a draw's words come from --------------------------------------------------------

    def _place(self, shape: Shape) -> tuple[int, int]:
        """(first word of this draw, offset of this process's first element in it); advances the stream."""
        size, offset = _size(shape), 0
        if self.shard is not None and len(shape) >= 1 and shape[0] == self.shard[1] - self.shard[0]:
            lo, _, total = self.shard
            row = _size(shape[1:])
            size, offset = total * row, lo * row
        base = self.position
        self.position += -(-size // 4) * 4  # the next draw starts on a block
        return base, offset

    def words(self, shape: Shape) -> Any:
        """One uint64 word per element, flat (prod(shape),), on the backend's device."""
        return self.backend.random_words(self.key, self.epoch, self.take(shape), _size(shape))

    def take(self, shape: Shape) -> int:
        """The word of this process's first element in a draw of `shape`; advances the stream as that draw does.

        For a backend kernel that computes a draw's words itself (fused dropout): element e of the
        draw, in C order, uses word take(shape) + e, as `words` would give it."""
        base, offset = self._place(shape)
        return base + offset

    # -- draws ---------------------------------------------------------------------------------

    def _float(self, dtype: Any) -> Any:
        dt = self.backend.dtype("float64" if dtype is None else dtype)
        xp = self.backend.xp
        if dt not in (xp.float32, xp.float64):
            raise ValueError(f"random floats come as float32 or float64, not {dt}")
        return dt

    def _unit(self, w: Any, dt: Any) -> Any:
        """Uniform [0, 1) floats of dtype `dt` from the top bits of uint64 words (exact)."""
        xp = self.backend.xp
        if dt == xp.float32:
            return xp.astype(w >> 40, xp.float32) * (2.0**-24)
        return xp.astype(w >> 11, xp.float64) * (2.0**-53)

    def uniform(self, shape: Shape, low: float = 0.0, high: float = 1.0, dtype: Any = None) -> Any:
        """Array of `shape` drawn from U[low, high), float64 unless `dtype` says float32."""
        shape = tuple(shape)
        dt = self._float(dtype)
        u = self._unit(self.words(shape), dt)
        return self.backend.xp.reshape(u * (high - low) + low, shape)

    def normal(self, shape: Shape, mean: float = 0.0, std: float = 1.0, dtype: Any = None) -> Any:
        """Array of `shape` drawn from N(mean, std^2) by Box-Muller (float64 unless `dtype` says float32)."""
        xp = self.backend.xp
        shape = tuple(shape)
        dt = self._float(dtype)
        n = _size(shape)
        base, offset = self._place(shape)
        # element e is one of the two normals of pair e // 2, so a shard starting mid-pair computes that whole pair
        first, pairs = offset // 2, (offset + n + 1) // 2 - offset // 2
        if dt == xp.float32:  # a pair from the two 24-bit halves of one word: half the words, float32 math
            w = self.backend.random_words(self.key, self.epoch, base + first, pairs)
            u1 = 1.0 - xp.astype(w >> 40, dt) * (2.0**-24)  # in (0, 1]: the log is finite
            t = xp.astype((w >> 8) & 0xFF_FFFF, dt) * (_TWO_PI * 2.0**-24)  # = 2 pi u2 exactly: 2**-24 is exact
        else:  # a pair from two words, 53 bits each
            w = self.backend.random_words(self.key, self.epoch, base + 2 * first, 2 * pairs)
            w = xp.reshape(w, (pairs, 2))
            u1, t = 1.0 - self._unit(w[:, 0], dt), self._unit(w[:, 1], dt) * _TWO_PI
        r = xp.sqrt(-2.0 * xp.log(u1)) * std  # the scale on the pairs' radius: one pass less over the output
        z = xp.reshape(xp.stack((r * xp.cos(t), r * xp.sin(t)), axis=1), (2 * pairs,))
        skip = offset - 2 * first
        z = z[skip : skip + n]
        return xp.reshape(z + mean if mean else z, shape)

    def bernoulli(self, shape: Shape, p: float, dtype: Any = None) -> Any:
        """Float array of `shape` (float32 unless `dtype`): 1 with probability p, else 0."""
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"bernoulli: p must be in [0, 1], got {p!r}")
        shape = tuple(shape)
        xp = self.backend.xp
        keep = (self.words(shape) >> 11) < bernoulli_threshold(p)
        return xp.reshape(xp.astype(keep, self.backend.dtype(dtype or "float32")), shape)

    def integers(self, low: int, high: int, shape: Shape) -> Any:
        """Int64 array of `shape` drawn uniformly from [low, high) (high - low at most 2**32)."""
        span = int(high) - int(low)
        if not 1 <= span <= 1 << 32:
            raise ValueError(f"integers: need 1 <= high - low <= 2**32, got low={low}, high={high}")
        shape = tuple(shape)
        xp = self.backend.xp
        v = ((self.words(shape) >> 32) * span) >> 32
        return xp.reshape(xp.astype(v, xp.int64) + int(low), shape)

    def permutation(self, n: int) -> Any:
        """A random permutation of 0..n-1, int64 (n,) on the device (never sharded: every rank needs it whole)."""
        n = int(n)
        if not 0 <= n < 1 << 32:
            raise ValueError(f"permutation: n must be in [0, 2**32), got {n}")
        xp = self.backend.xp
        shard, self.shard = self.shard, None
        try:
            w = self.words((n,))
        finally:
            self.shard = shard
        bits = max(1, (n - 1).bit_length())
        index = xp.arange(n, dtype=xp.uint64, device=self.backend.device)
        keys = ((w >> bits) << bits) | index  # distinct keys: any sort gives this order
        return xp.astype(xp.sort(keys) & ((1 << bits) - 1), xp.int64)


class Rng:
    """The named streams of one backend, all from one seed and epoch; their state is a few integers.

    `seed(s, epoch)` restarts every stream at position 0 of epoch `epoch` (the Trainer does so
    at each epoch's start, so an epoch's numbers do not depend on what ran before it). The
    draw methods of Rng itself use the "default" stream; xnet's own consumers use theirs.
    """

    def __init__(self, backend: Backend, seed: int = 0):
        self._backend = backend
        self._shard: tuple[int, int, int] | None = None
        self.seed(seed)

    def seed(self, seed: int, epoch: int = 0) -> None:
        """Restart every stream from `seed` (an int in [0, 2**63)) at the start of `epoch`."""
        self._seed = check_seed(seed)
        self._epoch = _check_count("epoch", epoch)
        self._streams: dict[str, Stream] = {}

    @property
    def seed_value(self) -> int:
        """The seed the streams were started from."""
        return self._seed

    def stream(self, name: str) -> Stream:
        """The stream `name` (created at position 0 on first use)."""
        s = self._streams.get(name)
        if s is None:
            s = self._streams[name] = Stream(self._backend, self._seed, name, self._epoch)
            s.shard = self._shard
        return s

    @contextmanager
    def batch_shard(self, lo: int, hi: int, total: int) -> Iterator[None]:
        """Inside: draws with hi - lo rows are rows lo..hi of the draw with `total` rows (data parallelism)."""
        if not 0 <= lo < hi <= total:
            raise ValueError(f"batch_shard: need 0 <= lo < hi <= total, got lo={lo}, hi={hi}, total={total}")
        previous = self._shard
        self._set_shard((int(lo), int(hi), int(total)))
        try:
            yield
        finally:
            self._set_shard(previous)

    def _set_shard(self, shard: tuple[int, int, int] | None) -> None:
        self._shard = shard
        for s in self._streams.values():
            s.shard = shard

    # -- the "default" stream's draws ------------------------------------------------------------

    def normal(self, shape: Shape, mean: float = 0.0, std: float = 1.0, dtype: Any = None) -> Any:
        """Array of `shape` drawn from N(mean, std^2)."""
        return self.stream("default").normal(shape, mean, std, dtype)

    def uniform(self, shape: Shape, low: float = 0.0, high: float = 1.0, dtype: Any = None) -> Any:
        """Array of `shape` drawn from U[low, high)."""
        return self.stream("default").uniform(shape, low, high, dtype)

    def bernoulli(self, shape: Shape, p: float, dtype: Any = None) -> Any:
        """Float array of `shape`: 1 with probability p, else 0."""
        return self.stream("default").bernoulli(shape, p, dtype)

    def permutation(self, n: int) -> Any:
        """A random permutation of 0..n-1 as an int64 array (n,)."""
        return self.stream("default").permutation(n)

    def integers(self, low: int, high: int, shape: Shape) -> Any:
        """Int64 array of `shape` drawn uniformly from [low, high)."""
        return self.stream("default").integers(low, high, shape)

    # -- state -----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """{"generator", "seed", "epoch", "positions": {stream: words used}}: JSON-serialisable."""
        positions = {name: s.position for name, s in sorted(self._streams.items()) if s.position}
        return {"generator": GENERATOR, "seed": self._seed, "epoch": self._epoch, "positions": positions}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the streams from a `state_dict()` (saved on any backend); ValueError naming a bad field.

        A state saved before xnet drew from Philox (NumPy's PCG64 or cuRAND's) cannot be continued
        here: the streams go on from a seed that state determines, so such a resume is still reproducible.
        """
        if not isinstance(state, dict):
            raise ValueError(f"random state: expected a dict, got {type(state).__name__}")
        if state.get("generator") != GENERATOR:
            if "bit_generator" in state or "draws" in state:  # written by xnet before the Philox streams
                text = json.dumps(state, sort_keys=True, default=str)
                self.seed(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") % SEED_LIMIT)
                return
            raise ValueError(f"random state: generator must be {GENERATOR!r}, got {state.get('generator')!r}")
        seed = check_seed(state.get("seed"), "random state: seed")
        epoch = _check_count("random state: epoch", state.get("epoch"))
        positions = state.get("positions")
        if not isinstance(positions, dict):
            raise ValueError(f"random state: positions must be a dict of stream -> int, got {positions!r}")
        checked = {}
        for name, pos in positions.items():
            if not isinstance(name, str):
                raise ValueError(f"random state: positions: stream names must be strings, got {name!r}")
            checked[name] = _check_count(f"random state: positions[{name!r}]", pos)
        self.seed(seed, epoch)
        for name, pos in checked.items():
            self.stream(name).position = pos


def _check_count(what: str, value: Any) -> int:
    """An int >= 0 (not a bool or float); ValueError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be an integer >= 0, got {value!r}")
    return value


__all__ = ["GENERATOR", "Rng", "Stream", "bernoulli_threshold", "check_seed", "stream_id"]
