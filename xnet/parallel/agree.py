"""Before training, the ranks compare notes: every rank set up without error, and all run the same thing.

`agreement(world)` wraps a setup phase (reading the configuration, loading the data, building the
model). Every rank leaves it together: if any rank failed, every rank raises the first failure,
named by its rank, marked `every_rank` so that only rank 0 prints it and all exit with its code;
so a data file missing on one machine stops the job before any training, with one line.
`check_same(world, ...)` then refuses ranks that differ in xnet version, configuration or data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from xnet.data.pixels import Pixels
from xnet.errors import XnetError, error_line
from xnet.parallel.world import World


class RankError(XnetError):
    """A failure that every rank raises together (rank 0 prints it, all exit with `exit_code`)."""

    every_rank = True

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


@contextmanager
def agreement(world: World | None, what: str = "setting up") -> Iterator[None]:
    """Run the body on every rank; if it failed on any, raise that failure (the lowest rank's) on all."""
    if world is None:
        yield
        return
    failure: tuple[str, int] | None = None
    try:
        yield
    except BaseException as e:  # noqa: B036 - every rank must reach the exchange below, whatever happened
        failure = error_line(e) or (f"{type(e).__name__}: {e} (an internal error)", 1)
        if error_line(e) is None:
            import traceback

            traceback.print_exc()  # a bug: its traceback, from the rank that hit it
    failures = world.allgather_objects(failure, what)
    bad = [(rank, f) for rank, f in enumerate(failures) if f is not None]
    if not bad:
        return
    messages = {f[0] for _, f in bad}
    rank, (message, code) = bad[0]
    if len(bad) == world.size and len(messages) == 1:
        raise RankError(message, code)  # the same on every rank: no rank to name
    others = f" (and {len(bad) - 1} more rank{'s' * (len(bad) > 2)})" if len(bad) > 1 else ""
    raise RankError(f"rank {rank} of {world.size}{others}: {message}", code)


def data_fingerprint(x: np.ndarray | Pixels, y: np.ndarray | None) -> tuple[Any, ...]:
    """Shapes and float64 sums of a training set: equal on ranks that read the same data.

    Of Pixels, the sum of the raw values and the normalisation (their float32 array is not built)."""
    if isinstance(x, Pixels):
        total: Any = (float(np.sum(x.raw, dtype=np.float64)), x.normalization.offset, x.normalization.scale)
    else:
        total = float(np.sum(x, dtype=np.float64))
    return tuple(x.shape), total, None if y is None else (tuple(y.shape), float(np.sum(y, dtype=np.float64)))


def check_same(world: World, version: str, config: dict[str, Any], data: tuple[Any, ...]) -> None:
    """RankError on every rank when a rank's xnet version, configuration or training data differs from rank 0's."""
    mine = {"version": version, "config": config, "data": data}
    everyone = world.allgather_objects(mine, "comparing the ranks' configurations")
    ours = everyone[0]
    for rank, theirs in enumerate(everyone[1:], 1):
        if theirs["version"] != ours["version"]:
            raise RankError(
                f"rank {rank} runs xnet {theirs['version']} and rank 0 xnet {ours['version']}: "
                "install the same version on every machine"
            )
        if theirs["config"] != ours["config"]:
            keys = sorted(k for k in set(ours["config"]) | set(theirs["config"])
                          if ours["config"].get(k) != theirs["config"].get(k))  # fmt: skip
            diffs = "; ".join(f"{k} = {theirs['config'].get(k)!r} there, {ours['config'].get(k)!r} on rank 0"
                              for k in keys)  # fmt: skip
            raise RankError(f"rank {rank} was given another configuration than rank 0 ({diffs})")
        if theirs["data"] != ours["data"]:
            raise RankError(
                f"rank {rank} read other training data than rank 0 (shape and sum {theirs['data'][:2]} there, "
                f"{ours['data'][:2]} on rank 0): give every machine the same data files"
            )


__all__ = ["RankError", "agreement", "check_same", "data_fingerprint"]
