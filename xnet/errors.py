"""Errors that reach users as one line, never a traceback."""


class XnetError(Exception):
    """A user mistake or an unusable environment: the CLI prints the message and exits 2."""

    exit_code = 2


class DivergedError(XnetError):
    """Training produced a NaN or infinite loss."""

    exit_code = 3


class DataError(XnetError, ValueError):
    """A dataset is missing, corrupt or malformed; the message names the file and the problem."""


class ConfigError(XnetError, ValueError):
    """A configuration file or option value is invalid; the message names the key."""


class SignalStop(BaseException):
    """A stop signal (SIGTERM, SIGHUP, SIGUSR1) outside training: like KeyboardInterrupt, not an Exception.

    During training these signals stop the run after its current step instead (xnet/train/stop_signals.py).
    """

    def __init__(self, signum: int):
        import signal

        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum  # what a shell reports for a process the signal ended


def error_line(error: BaseException) -> tuple[str, int] | None:
    """The one line and exit code the CLI shows for `error`; None for an internal error (a bug)."""
    from xnet.backends.base import BackendUnavailable  # imported here: `import xnet.errors` stays light

    if isinstance(error, XnetError):
        return str(error), error.exit_code
    if isinstance(error, MemoryError):  # NumPy's _ArrayMemoryError and CuPy's OutOfMemoryError
        return f"out of memory: {error or 'an allocation failed'} (try a smaller model or --batch-size)", 2
    if isinstance(error, BackendUnavailable):
        return str(error), 2
    if isinstance(error, OSError):
        return (f"{error.strerror or error}: {error.filename}" if error.filename else str(error)), 2
    if isinstance(error, (ValueError, TypeError)):
        return str(error), 2
    if isinstance(error, SignalStop):
        return str(error), error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", 130
    return None
