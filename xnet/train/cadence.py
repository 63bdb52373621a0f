"""How often training writes its checkpoint: at each epoch's end, and more often when asked.

`checkpoint_every` is a number of steps (500) or a time ("30s", "10m", "2h"): a SIGKILL or a power
cut then loses at most that much training, not the whole epoch. Steps count from the start of the
run (checkpoints at steps 500, 1000, ... of the run, wherever it was resumed); a time counts from
the last checkpoint written. The epoch's end always writes one too.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

from xnet.errors import ConfigError

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_TIME = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smh])")
_EXPECTED = "a number of steps (500), a time (30s, 10m, 2h) or 'epoch'"


def parse_checkpoint_every(spec: int | str | None) -> int | str | None:
    """The checkpoint cadence in its canonical form: an int of steps, a time like '10m', or None (each epoch)."""
    if spec is None:
        return None
    bad = ConfigError(f"checkpoint_every: expected {_EXPECTED}, got {spec!r}")
    if isinstance(spec, int) and not isinstance(spec, bool):
        if spec < 1:
            raise bad
        return spec
    if not isinstance(spec, str):
        raise bad
    text = spec.strip().lower()
    if text == "epoch":
        return None
    if text.isdigit():
        if int(text) < 1:
            raise bad
        return int(text)
    match = _TIME.fullmatch(text)
    if match is None or not float(match.group(1)) > 0:
        raise bad
    return f"{match.group(1)}{match.group(2)}"


def seconds_of(spec: str) -> float:
    """'10m' -> 600.0."""
    match = _TIME.fullmatch(spec)
    if match is None:
        raise ValueError(f"not a time like 10m: {spec!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


class CheckpointCadence:
    """Whether a checkpoint is due after a step; `clock` (seconds) is replaceable for tests."""

    def __init__(self, every: int | str | None, clock: Callable[[], float] = time.monotonic):
        every = parse_checkpoint_every(every)
        self.every = every
        self.steps = every if isinstance(every, int) else None
        self.seconds = seconds_of(every) if isinstance(every, str) else math.inf
        self.clock = clock
        self.last = clock()

    def due(self, step: int) -> bool:
        """After the run's step number `step` (1, 2, ...): is a checkpoint due?"""
        if self.steps is not None:
            return step % self.steps == 0
        return self.clock() - self.last >= self.seconds

    def saved(self) -> None:
        """A checkpoint was just written: the time counts from now."""
        self.last = self.clock()


__all__ = ["CheckpointCadence", "parse_checkpoint_every", "seconds_of"]
