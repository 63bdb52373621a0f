"""The signals that ask a run to stop: Ctrl-C, and what schedulers send before they kill a job.

Slurm, Kubernetes, systemd and spot-instance reclaimers send SIGTERM (Slurm's `--signal` may send
SIGUSR1 or SIGHUP instead), wait a grace period, then SIGKILL. While `Trainer.fit` runs, each of
these is noted by `StopRequests` and training stops after the current step (on every rank of a
data-parallel run after the same step), with a checkpoint. Outside training, `raising_stop_signals`
turns the scheduler signals into `SignalStop`, as Python turns Ctrl-C into KeyboardInterrupt, so the
command ends with one line and the exit status 128 + the signal number that schedulers expect.

A second Ctrl-C interrupts at once, as a user pressing it twice means. A repeated scheduler signal
is ignored: launchers deliver one signal to a process more than once (mpiexec forwards what it
receives, and a scheduler may signal every process of the job as well), and the checkpoint being
written must land; the scheduler's SIGKILL is the hard stop.

A signal that the process inherited as ignored (`nohup` ignores SIGHUP) stays ignored.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from xnet.errors import SignalStop

# Windows has neither SIGHUP nor SIGUSR1
STOP_SIGNALS: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1") if hasattr(signal, name)
)


def signal_name(signum: int) -> str:
    """'SIGTERM' for 15."""
    return signal.Signals(signum).name


def _install(signums: tuple[int, ...], handler: Any) -> dict[int, Any]:
    """Set `handler` for each signal not inherited as ignored; returns the handlers it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread may set handlers (a fit in a worker thread has none)
    previous = {}
    for signum in signums:
        if signal.getsignal(signum) == signal.SIG_IGN:
            continue
        previous[signum] = signal.signal(signum, handler)
    return previous


def _restore(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


class StopRequests:
    """What `fit` listens to: the first stop signal is noted (`signum`), and training ends after the step.

    `request()` asks the same from code (a callback, a test): `signum` stays None then.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def request(self, signum: int | None = None) -> None:
        """Ask training to stop after its current step."""
        if not self.requested:
            self.requested, self.signum = True, signum

    def _note(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: stop now (an atomic write under way leaves the old file)
        self.request(signum)  # a repeated scheduler signal changes nothing

    def install(self) -> None:
        """Listen from now on (a request left from an earlier fit is forgotten)."""
        self.requested, self.signum = False, None
        self._previous = _install(STOP_SIGNALS, self._note)

    def restore(self) -> None:
        """Put back the handlers `install` replaced."""
        _restore(self._previous)
        self._previous = {}


def _raise_stop(signum: int, frame: Any) -> None:
    raise SignalStop(signum)


@contextmanager
def raising_stop_signals() -> Iterator[None]:
    """Within: SIGTERM, SIGHUP and SIGUSR1 raise SignalStop (fit listens to them its own way meanwhile)."""
    previous = _install(tuple(s for s in STOP_SIGNALS if s != signal.SIGINT), _raise_stop)
    try:
        yield
    finally:
        _restore(previous)


__all__ = ["STOP_SIGNALS", "StopRequests", "raising_stop_signals", "signal_name"]
