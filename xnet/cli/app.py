"""The Typer app and the entry point that turns every user mistake into one line and exit 2."""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from xnet.errors import XnetError

app = typer.Typer(
    name="xnet",
    help="Train, evaluate and compare small neural networks on NumPy (CPU) or CuPy (CUDA).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",  # for the option groups (rich help panels) of `xnet train --help`
)


def help_text(text: str) -> str:
    """`text` with its square brackets kept: rich markup would read '[default: 3]' as a style and drop it."""
    from rich.markup import escape

    return escape(text)


@app.callback()
def _root() -> None:
    """Train, evaluate and compare small neural networks on NumPy (CPU) or CuPy (CUDA)."""
    # a callback keeps `xnet` a group of sub-commands even while it has only one


def fail(message: str, code: int = 2) -> None:
    """Print one line on stderr and exit with `code`."""
    print(f"xnet: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _register_commands() -> None:
    # each module adds its command to `app`; imported here so `app` exists first
    from xnet.cli import info  # noqa: F401

    for optional in ("train", "options", "evaluate", "predict", "plot", "compare"):
        try:
            __import__(f"xnet.cli.{optional}")
        except ModuleNotFoundError as e:
            if e.name != f"xnet.cli.{optional}":
                raise


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app; user errors become one line and exit code 2."""
    from xnet.backends import BackendUnavailable

    try:
        # without standalone mode, a command's typer.Exit(code) comes back as the return value
        code = app(args=argv, standalone_mode=False, prog_name="xnet")
        if isinstance(code, int) and code:
            raise SystemExit(code)
    except TyperException as e:  # bad flag, bad value, missing argument
        if type(e).__name__ == "NoArgsIsHelpError":
            app(args=["--help"], standalone_mode=False, prog_name="xnet")
            return
        fail(e.format_message(), 2)
    except typer.Abort:  # Ctrl-C outside training
        fail("aborted", 130)
    except typer.Exit as e:
        raise SystemExit(e.exit_code) from None
    except XnetError as e:
        fail(str(e), e.exit_code)
    except MemoryError as e:  # NumPy's _ArrayMemoryError and CuPy's OutOfMemoryError are MemoryErrors
        fail(f"out of memory: {e or 'an allocation failed'} (try a smaller model or --batch-size)")
    except BackendUnavailable as e:
        fail(str(e), 2)
    except OSError as e:
        fail(f"{e.strerror or e}: {e.filename}" if e.filename else str(e))
    except (ValueError, TypeError) as e:
        fail(str(e))
