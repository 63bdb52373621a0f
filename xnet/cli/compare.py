"""`xnet compare STUDY.toml`: run every variant of a study and write the summary table and curves."""

from __future__ import annotations

from pathlib import Path

import typer

from xnet.cli.text import help_text


def compare(
    study_file: Path = typer.Argument(
        ..., help=help_text("A study TOML: [base] options and a [grid] or [[variants]] (any `xnet train` option).")
    ),
    out: Path = typer.Option(None, "--out", help=help_text("Output folder [default: studies/<study name>].")),
    repeat: int = typer.Option(1, "--repeat", min=1, help="Seeds per variant; the table shows mean and std."),
    device: str = typer.Option(None, "--device", help=help_text("cpu, cuda, cuda:N or auto [default: the study's].")),
    epochs: int = typer.Option(None, "--epochs", help="Override every variant's epochs."),
    limit: int = typer.Option(None, "--limit", help="Use only the first N training samples."),
    data_dir: str = typer.Option(None, "--data-dir", help="Folder holding the dataset's files."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the final table."),
) -> None:
    """Compare variants of a base configuration; finished variants are not run again."""
    from xnet.parallel.agree import agreement
    from xnet.parallel.world import current_world
    from xnet.study import load_study, run_folder_name, run_study
    from xnet.study.summary import summary_markdown
    from xnet.train.progress import LineReporter, Reporter

    world = current_world()  # under mpiexec: the runs spread over the ranks, rank 0 prints (xnet/study/mpi.py)
    with agreement(world, "reading the study"):
        study = load_study(study_file)
    overrides = {k: v for k, v in {"device": device, "epochs": epochs, "limit": limit, "data_dir": data_dir}.items()
                 if v is not None}  # fmt: skip
    out_dir = out or Path("studies") / run_folder_name(study.name, default="study")

    def header(name: str, k: int) -> str:
        return f"== {name}" + (f" (seed {k + 1} of {repeat})" if repeat > 1 else "")

    def reporter_factory(name: str, k: int) -> Reporter:
        if quiet:
            return Reporter()
        print(header(name, k), flush=True)
        return LineReporter()

    def skipped(name: str, k: int) -> None:
        if not quiet:
            print(f"{header(name, k)}: finished earlier, not run again", flush=True)

    files: list[str] = []

    def written(names: list[str]) -> None:
        files[:] = names  # the summary is rewritten after every variant: the last names count

    if world is None:
        rows = run_study(study, out_dir, repeat, overrides, reporter_factory, skipped, written)
    else:
        from xnet.study.mpi import run_study_mpi
        from xnet.train.progress import format_record

        def finished(name: str, k: int, metrics: dict) -> None:
            last = (metrics.get("epochs") or [{}])[-1]
            done = format_record(last) if "lr" in last else metrics.get("status", "finished")
            if not quiet:
                print(f"{header(name, k)}: {done}", flush=True)

        rows = run_study_mpi(world, study, out_dir, repeat, overrides, finished, skipped, written)
        if rows is None:  # a worker rank: rank 0 prints the table
            return
    print(summary_markdown(study, rows, overrides, [f for f in files if f.endswith(".png")]), end="")
    print(f"wrote {out_dir / files[0]}, " + _and(files[1:]))


def _and(names: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]
