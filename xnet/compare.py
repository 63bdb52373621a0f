"""Comparison studies: one base configuration, a grid or list of variants, seeds, a summary table."""

from __future__ import annotations

import itertools
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnet.atomic import atomic_write_text
from xnet.config import LOCAL_KEYS, RunConfig, config_dict_from_mapping, validate
from xnet.errors import ConfigError, DivergedError, XnetError
from xnet.study_summary import summarize, write_summary
from xnet.train.progress import Reporter

__all__ = ["Study", "Variant", "load_study", "run_study", "run_folder_name", "finished_metrics", "summarize"]

TOP_LEVEL_KEYS = ("name", "description", "notes", "base", "grid", "variants")


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


class StudyInterrupted(XnetError):
    """Ctrl-C during a study: the running variant saved a checkpoint; rerunning continues it."""

    exit_code = 130


def _variant_name(overrides: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return ",".join(map(fmt, v)) if isinstance(v, list) else str(v)

    return "-".join(f"{k}={fmt(v)}" for k, v in overrides.items()) or "base"


def run_folder_name(name: str) -> str:
    """A variant's folder name: runs of characters other than letters, digits, ".", "=" and "_"
    become one '-' ("1 hidden (256)" -> "1-hidden-256")."""
    return re.sub(r"[^A-Za-z0-9.=_]+", "-", name).strip("-") or "variant"


def _read_study_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"study file not found: {path}") from None
    except (IsADirectoryError, UnicodeDecodeError):
        raise ConfigError(f"study file {path} is not a readable text file") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path.name}: not valid TOML: {e}") from None


def _check_init(spec: str | None, where: str) -> None:
    """Reject an unknown initialiser before any variant trains, not when its turn comes."""
    from xnet.nn.init import parse_init

    if spec is not None:
        try:
            parse_init(spec)
        except ValueError as e:
            raise ConfigError(f"{where}: init: {e}") from None


def load_study(path: str | Path) -> Study:
    """Parse a study TOML: name, description, notes, [base], and a [grid] and/or [[variants]].

    A [grid] expands to every combination of its lists; [[variants]] tables are named variants
    (`name = "..."`) overriding any options of [base]. Raises ConfigError naming the problem.
    """
    path = Path(path)
    raw, text = _read_study_toml(path)
    unknown = set(raw) - set(TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(
            f"{path.name}: unknown top-level key(s) {sorted(unknown)} "
            "(valid: name, description, notes, [base], [grid], [[variants]])"
        )
    for key in ("name", "description", "notes"):
        if not isinstance(raw.get(key, ""), str):
            raise ConfigError(f"{path.name}: {key!r} must be a string")
    base_table, grid, tables = raw.get("base", {}), raw.get("grid", {}), raw.get("variants", [])
    if not isinstance(base_table, dict) or not isinstance(grid, dict):
        raise ConfigError(f"{path.name}: 'base' and 'grid' must be tables ([base], [grid])")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path.name}: 'variants' must be an array of tables ([[variants]])")
    base = config_dict_from_mapping(base_table, text, f"{path.name} [base]")
    study = Study(raw.get("name", path.stem), raw.get("description", ""), base, notes=raw.get("notes", ""))
    combos: list[tuple[str | None, dict[str, Any]]] = []
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path.name} [grid]: {key!r} must be a non-empty list of values")
    keys = list(grid)
    if keys:
        for values in itertools.product(*(grid[k] for k in keys)):
            combos.append((None, dict(zip(keys, values, strict=True))))
    for table in tables:
        table = dict(table)
        name = table.pop("name", None)
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConfigError(f"{path.name} [[variants]]: 'name' must be a non-empty string, got {name!r}")
        combos.append((name, table))
    if not combos:
        raise ConfigError(f"{path.name}: a study needs a [grid] or [[variants]] to compare")
    folders: dict[str, str] = {}
    for name, overrides in combos:
        label = name or _variant_name(overrides)
        where = f"{path.name} variant {label!r}"
        folder = run_folder_name(label)
        if folder in folders:
            raise ConfigError(
                f"{path.name}: variants {folders[folder]!r} and {label!r} would share the folder {folder!r}"
            )
        folders[folder] = label
        args = {**base, **config_dict_from_mapping(overrides, text, where)}
        try:
            cfg = validate(RunConfig(**args))
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        _check_init(cfg.init, where)
        study.variants.append(Variant(label, overrides, cfg))
    return study


def _same_config(saved: dict[str, Any] | None, cfg: RunConfig) -> bool:
    """Whether a finished run was trained with `cfg` (where it was written and device aside)."""
    if not isinstance(saved, dict):
        return False
    ignore = {*LOCAL_KEYS, "device"}
    ours = {k: v for k, v in cfg.to_dict().items() if k not in ignore}
    return all(saved.get(k) == v for k, v in ours.items())


def finished_metrics(run_dir: Path, cfg: RunConfig | None = None) -> dict[str, Any] | None:
    """The metrics of a run that completed (or diverged) earlier with this config, else None."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(metrics, dict) or metrics.get("interrupted"):
        return None
    if cfg is not None and not _same_config(metrics.get("config"), cfg):
        return None
    return metrics


class _Recorder(Reporter):
    """Passes events on and keeps the epoch records, so a diverged run still has its curve."""

    def __init__(self, inner: Reporter):
        self.inner, self.records = inner, []

    def epoch_start(self, epoch, epochs, steps):
        self.inner.epoch_start(epoch, epochs, steps)

    def steps_done(self, step, loss, samples_per_s):
        self.inner.steps_done(step, loss, samples_per_s)

    def epoch_end(self, record):
        self.records.append(dict(record))
        self.inner.epoch_end(record)

    def message(self, text):
        self.inner.message(text)

    def close(self):
        self.inner.close()


def _resumable(checkpoint: Path, cfg: RunConfig) -> bool:
    """An interrupted run of exactly this configuration left `checkpoint` (else start afresh)."""
    from xnet.train.checkpoint import load_checkpoint

    if not checkpoint.is_file():
        return False
    try:
        state = load_checkpoint(checkpoint)
    except XnetError:
        return False
    done = state.get("trainer", {}).get("epoch", 0)
    return _same_config(state.get("config"), cfg) and isinstance(done, int) and done < cfg.epochs


def _train_variant(cfg: RunConfig, run_dir: Path, reporter: Reporter) -> dict[str, Any]:
    """Train (or continue an interrupted run of) one variant; a diverged run becomes a status."""
    from xnet.train.run import run_training

    recorder = _Recorder(reporter)
    try:
        result = run_training(cfg, recorder, resume=_resumable(run_dir / "model.npz", cfg))
    except DivergedError as e:
        metrics = {"status": f"diverged: {e}", "epochs": recorder.records, "config": cfg.to_dict(),
                   "epochs_completed": len(recorder.records), "seed": cfg.seed}  # fmt: skip
        atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        return metrics
    if result.interrupted:
        raise StudyInterrupted(
            f"interrupted: the running variant saved its checkpoint in {run_dir}; "
            "run the same `xnet compare` again to continue where it stopped"
        )
    return result.metrics


def run_study(
    study: Study,
    out_dir: Path,
    repeat: int = 1,
    overrides: dict[str, Any] | None = None,
    reporter_factory: Any = None,
    skipped: Any = None,
) -> list[dict[str, Any]]:
    """Run every variant `repeat` times (seeds seed, seed+1, ...), skipping finished runs.

    The first seed of a variant trains in out_dir/<variant>, later ones in <variant>-seed<N>, so
    raising --repeat reuses the runs already there. summary.md/.csv and curves.png are rewritten
    after every variant. `skipped(name, k)` is called for each run found finished.
    """
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ConfigError(f"--repeat must be a positive integer, got {repeat!r}")
    configs = []
    for variant in study.variants:
        try:
            configs.append(variant.config.replace(**(overrides or {})))
        except ConfigError as e:
            raise ConfigError(f"variant {variant.name!r}: {e}") from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant, base_cfg in zip(study.variants, configs, strict=True):
        runs, dirs = [], []
        for k in range(repeat):
            cfg = base_cfg.replace(seed=base_cfg.seed + k, quiet=True)
            run_dir = out_dir / (run_folder_name(variant.name) + (f"-seed{cfg.seed}" if k else ""))
            cfg.out = str(run_dir)
            metrics = finished_metrics(run_dir, cfg)
            if metrics is None:
                reporter = reporter_factory(variant.name, k) if reporter_factory else Reporter()
                metrics = _train_variant(cfg, run_dir, reporter)
            elif skipped is not None:
                skipped(variant.name, k)
            runs.append(metrics)
            dirs.append(run_dir)
        rows.append(summarize(variant.name, runs, dirs))
        write_summary(study, rows, out_dir)
    return rows
