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
