"""The study file: one base configuration, a [grid] and/or [[variants]], read and checked into a Study."""

from __future__ import annotations

import itertools
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnet.config import RunConfig, config_dict_from_mapping, validate
from xnet.errors import ConfigError

TOP_LEVEL_KEYS = ("name", "description", "notes", "base", "grid", "variants")
# run options a study decides itself: every run goes to <study folder>/<variant>
STUDY_KEYS = ("out",)


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
        if isinstance(v, bool):
            return "true" if v else "false"
        return ",".join(map(fmt, v)) if isinstance(v, list) else str(v)

    return "-".join(f"{k}={fmt(v)}" for k, v in overrides.items()) or "base"


def run_folder_name(name: str, default: str = "variant") -> str:
    """A variant's folder name: runs of characters other than letters, digits (any script: str.isalnum),
    ".", "=", "_" and "+" become one '-' ("1 hidden (256)" -> "1-hidden-256", "lr=1e+30" stays, "α" stays);
    never "." or "..", never a path separator or control character.

    "+" is kept so that numbers stay distinct ("1e+30" and "1e-30"); names that still come out
    the same are caught by load_study and run_study before anything runs.
    """
    # NFC: an "é" typed as e + combining accent is one letter, not "e-"
    kept = "".join(c if c.isalnum() or c in ".=_+" else "/" for c in unicodedata.normalize("NFC", name))
    folder = re.sub("/+", "-", kept).strip("-")
    return default if folder.strip(".") == "" else folder


def _check_name(name: Any, where: str) -> str:
    """An explicit variant name: a non-empty string that can name a folder inside the study's folder."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: 'name' must be a non-empty string, got {name!r}")
    if name.strip() in (".", "..") or any(sep in name for sep in ("/", "\\", "\0")):
        raise ConfigError(
            f"{where}: 'name' {name!r} cannot name the variant's folder inside the study folder "
            "(no '/' or '\\', not '.' or '..')"
        )
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise ConfigError(f"{where}: 'name' {name!r} contains a control character (a tab, newline, ...)")
    return name


def _check_study_keys(options: dict[str, Any], where: str) -> None:
    """Options a study sets itself (the output folder) are an error rather than silently ignored."""
    for key in STUDY_KEYS:
        if key in options:
            raise ConfigError(
                f"{where}: {key!r} cannot be set in a study: each variant writes to <study folder>/<variant>; "
                "choose the study folder with `xnet compare --out`"
            )


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
    _check_study_keys(base, f"{path.name} [base]")
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
        if name is not None:
            _check_name(name, f"{path.name} [[variants]]")
        combos.append((name, table))
    if not combos:
        raise ConfigError(f"{path.name}: a study needs a [grid] or [[variants]] to compare")
    for name, overrides in combos:
        label = name or _variant_name(overrides)
        where = f"{path.name} variant {label!r}"
        changes = config_dict_from_mapping(overrides, text, where)
        _check_study_keys(changes, where)
        try:
            cfg = validate(RunConfig(**{**base, **changes}))
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        study.variants.append(Variant(label, overrides, cfg))
    check_folders([(run_folder_name(v.name), v.name) for v in study.variants], path.name)
    return study


def check_folders(folders: list[tuple[str, str]], where: str) -> None:
    """ConfigError if two of the (folder, run) pairs share a folder (case-blind, as on macOS and Windows)."""
    seen: dict[str, tuple[str, str]] = {}
    for folder, run in folders:
        key = folder.casefold()
        if key in seen:
            first, other = seen[key]
            clash = f"two variants named {run!r}" if other == run else f"{other!r} and {run!r}"
            raise ConfigError(f"{where}: {clash} would share the folder {first!r}; rename one")
        seen[key] = (folder, run)
