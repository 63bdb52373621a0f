"""Comparison studies: one base configuration, a grid or list of variants, seeds, a summary table."""

from __future__ import annotations

import csv
import io
import itertools
import json
import statistics
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnet.config import RunConfig, config_dict_from_mapping, validate
from xnet.errors import ConfigError, DivergedError
from xnet.train.checkpoint import atomic_write_text

SUMMARY_COLUMNS = (
    "variant", "runs", "test_accuracy", "test_accuracy_std", "best_test_accuracy", "train_accuracy",
    "test_loss", "epochs", "seconds", "parameters", "status",
)  # fmt: skip


@dataclass
class Variant:
    """One configuration of a study: a name and the options it changes."""

    name: str
    overrides: dict[str, Any]
    config: RunConfig


@dataclass
class Study:
    """A parsed study file."""

    name: str
    description: str
    base: dict[str, Any]
    variants: list[Variant] = field(default_factory=list)
    notes: str = ""


def _variant_name(overrides: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return ",".join(map(str, v)) if isinstance(v, list) else str(v)

    return "-".join(f"{k}={fmt(v)}" for k, v in overrides.items()) or "base"


def load_study(path: str | Path) -> Study:
    """Parse a study TOML: name, description, [base], and [grid] and/or [[variants]]."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"study file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path.name}: not valid TOML: {e}") from None
    unknown = set(raw) - {"name", "description", "notes", "base", "grid", "variants"}
    if unknown:
        raise ConfigError(
            f"{path.name}: unknown top-level key(s) {sorted(unknown)} "
            "(valid: name, description, notes, [base], [grid], [[variants]])"
        )
    base = config_dict_from_mapping(raw.get("base", {}), text, f"{path.name} [base]")
    study = Study(raw.get("name", path.stem), raw.get("description", ""), base, notes=raw.get("notes", ""))
    combos: list[tuple[str | None, dict[str, Any]]] = []
    grid = raw.get("grid", {})
    if grid:
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{path.name} [grid]: {key!r} must be a non-empty list of values")
        keys = list(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            combos.append((None, dict(zip(keys, values, strict=True))))
    for table in raw.get("variants", []):
        table = dict(table)
        combos.append((table.pop("name", None), table))
    if not combos:
        raise ConfigError(f"{path.name}: a study needs a [grid] or [[variants]] to compare")
    seen = set()
    for name, overrides in combos:
        label = name or _variant_name(overrides)
        if label in seen:
            raise ConfigError(f"{path.name}: two variants are both named {label!r}")
        seen.add(label)
        args = {**base, **config_dict_from_mapping(overrides, text, f"{path.name} variant {label!r}")}
        study.variants.append(Variant(label, overrides, validate(RunConfig(**args))))
    return study


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=," else "_" for c in name)


def run_study(
    study: Study, out_dir: Path, repeat: int = 1, overrides: dict[str, Any] | None = None, reporter_factory: Any = None
) -> list[dict[str, Any]]:
    """Run every variant `repeat` times (seeds seed, seed+1, ...), skipping finished runs; write the summary."""
    from xnet.train.progress import Reporter
    from xnet.train.run import run_training

    if repeat < 1:
        raise ConfigError(f"--repeat must be >= 1, got {repeat}")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant in study.variants:
        runs = []
        for k in range(repeat):
            cfg = variant.config.replace(**(overrides or {}))
            cfg = cfg.replace(seed=cfg.seed + k, quiet=True)
            run_dir = out_dir / (_safe(variant.name) + (f"-seed{cfg.seed}" if repeat > 1 else ""))
            cfg.out = str(run_dir)
            metrics = finished_metrics(run_dir)
            if metrics is None:
                reporter = reporter_factory(variant.name, k) if reporter_factory else Reporter()
                try:
                    metrics = run_training(cfg, reporter).metrics
                except DivergedError as e:
                    metrics = {"status": f"diverged: {e}"}
                    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
            runs.append(metrics)
        rows.append(summarize(variant.name, runs))
        write_summary(study, rows, out_dir)
    return rows


def finished_metrics(run_dir: Path) -> dict[str, Any] | None:
    """The metrics of a run that completed (or diverged) earlier, else None."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if str(metrics.get("status", "")).startswith("diverged"):
        return metrics
    return None if metrics.get("interrupted") else metrics


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def summarize(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary row from the metrics of a variant's runs (mean over seeds, std of test accuracy)."""
    ok = [r for r in runs if "test_loss" in r]
    acc, acc_std = _mean_std([r.get("test_accuracy") for r in ok])
    status = "ok" if len(ok) == len(runs) else next(r["status"] for r in runs if "status" in r)
    return {
        "variant": name,
        "runs": len(runs),
        "test_accuracy": acc,
        "test_accuracy_std": acc_std,
        "best_test_accuracy": _mean_std([r.get("best_test_accuracy") for r in ok])[0],
        "train_accuracy": _mean_std([r.get("train_accuracy") for r in ok])[0],
        "test_loss": _mean_std([r.get("test_loss") for r in ok])[0],
        "epochs": max((r.get("epochs_completed", 0) for r in ok), default=0),
        "seconds": _mean_std([r.get("train_seconds") for r in ok])[0],
        "parameters": ok[0]["num_parameters"] if ok else None,
        "status": status,
        "histories": [r.get("epochs", []) for r in ok],
    }


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{100 * v:.2f}%"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_summary(study: Study, rows: list[dict[str, Any]], out_dir: Path) -> None:
    """summary.md, summary.csv and curves.png for the rows so far."""
    from xnet.plots import plot_histories

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_dir / "summary.csv", buf.getvalue())
    atomic_write_text(out_dir / "summary.md", summary_markdown(study, rows))
    histories = {r["variant"]: r["histories"][0] for r in rows if r["histories"]}
    if histories:
        plot_histories(histories, out_dir / "curves.png")


def summary_markdown(study: Study, rows: list[dict[str, Any]]) -> str:
    """The study's table in markdown."""
    repeat = max((r["runs"] for r in rows), default=1)
    lines = [f"# {study.name}", ""]
    if study.description:
        lines += [study.description, ""]
    lines += [
        "| variant | final test acc | best test acc | final train acc | test loss | epochs | seconds | params |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        acc = _fmt(r["test_accuracy"], pct=True)
        if r["test_accuracy_std"] is not None:
            acc += f" ± {100 * r['test_accuracy_std']:.2f}"
        if r["status"] != "ok":
            acc = f"{acc} ({r['status'].split(':')[0]})"
        lines.append(
            f"| {r['variant']} | {acc} | {_fmt(r['best_test_accuracy'], True)} | {_fmt(r['train_accuracy'], True)} "
            f"| {_fmt(r['test_loss'])} | {r['epochs']} | {_fmt(r['seconds'])} | {_fmt(r['parameters'])} |"
        )
    if repeat > 1:
        lines += ["", f"Mean over {repeat} seeds; ± is the standard deviation of the final test accuracy."]
    if study.notes:
        lines += ["", study.notes]
    return "\n".join(lines) + "\n"
