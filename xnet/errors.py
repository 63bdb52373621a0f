"""Errors that reach users as one line, never a traceback."""


class XnetError(Exception):
    """A user mistake or an unusable environment: the CLI prints the message and exits 2."""

    exit_code = 2


class DivergedError(XnetError):
    """Training produced a NaN or infinite loss."""

    exit_code = 3
