"""The Typer app and the entry point that turns every user mistake into one line and exit 2."""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from xnet.cli import compare, evaluate, export, info, lr_find, options, plot, predict, summary, train
from xnet.errors import SignalStop

app = typer.Typer(
    name="xnet",
    help="Train, evaluate and compare small neural networks on NumPy (CPU) or CuPy (CUDA).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",  # for the option groups (rich help panels) of `xnet train --help`
)


@app.callback()
def _root() -> None:
    """Train, evaluate and compare small neural networks on NumPy (CPU) or CuPy (CUDA)."""
    # a callback keeps `xnet` a group of sub-commands even while it has only one


def fail(message: str, code: int = 2, every_rank: bool = True) -> None:
    """Print one line on stderr and exit with `code`.

    Under mpiexec rank 0 alone prints: an error that every rank meets (`every_rank`, such as a
    bad flag) ends each rank with `code`; one that a single rank met is sent to rank 0, which
    prints it naming the rank and ends the whole job (xnet/parallel/world.py).
    """
    from xnet.parallel.world import launched_rank, started_world

    world = started_world()
    if world is not None and not every_rank:
        world.fail(message, code)
    rank = world.rank if world is not None else launched_rank()
    if not rank:
        print(f"xnet: error: {message}", file=sys.stderr)
    raise SystemExit(code)


# the commands in the order `xnet --help` lists them; each module holds one command function
for _command in (
    info.info, train.train, lr_find.lr_find, options.options, evaluate.evaluate, predict.predict, plot.plot,
    compare.compare, summary.summary, export.export,
):  # fmt: skip
    app.command(name=_command.__name__.replace("_", "-"))(_command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app; user errors become one line and exit code 2."""
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
    except Exception as e:
        _fail_with(e)
    except SignalStop as e:  # SIGTERM, SIGHUP or SIGUSR1 outside training (xnet/train/stop_signals.py)
        _fail_with(e)
    except KeyboardInterrupt as e:  # a second Ctrl-C under mpiexec, where a traceback would leave ranks waiting
        from xnet.parallel.world import started_world

        if started_world() is None:
            raise
        _fail_with(e)


def _fail_with(error: BaseException) -> None:
    """A user's mistake as one line and its exit code; an internal error re-raised (under mpiexec: reported)."""
    from xnet.errors import error_line
    from xnet.parallel.world import started_world

    line = error_line(error)
    if line is not None:
        fail(*line, every_rank=getattr(error, "every_rank", False) or started_world() is None)
    world = started_world()
    if world is None:
        raise error
    import traceback

    traceback.print_exc()  # a bug: its traceback from this rank, then the job ends instead of hanging
    world.fail(f"{type(error).__name__}: {error} (an internal error, traceback above)", 1)
