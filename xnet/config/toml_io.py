"""A RunConfig as TOML: reading experiment files into RunConfig arguments, and writing config.toml back out."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from xnet.config.options import applicable, defaults_used, given, option_keys
from xnet.config.schema import FIELDS, LOCAL_KEYS, RunConfig, type_ok
from xnet.config.values import toml_value
from xnet.errors import ConfigError


def _line_of(text: str, key: str) -> str:
    for i, line in enumerate(text.splitlines(), 1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line) or re.match(rf"\s*\[+\s*{re.escape(key)}\s*\]+", line):
            return f"line {i}"
    return "somewhere"


def config_dict_from_toml(path: str | Path) -> dict[str, Any]:
    """Read an experiment file into RunConfig keyword arguments (unknown keys and types named)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # utf-8-sig: a BOM (Windows editors) is not TOML
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {e.start}: {e.reason})") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path.name}: not valid TOML: {e}") from None
    return config_dict_from_mapping(raw, text, path.name)


def config_dict_from_mapping(raw: dict[str, Any], text: str = "", where: str = "config") -> dict[str, Any]:
    """Validate keys and value types of a parsed TOML mapping; return RunConfig arguments."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name == "model" and isinstance(value, dict):
            extra = set(value) - {"layers"}
            if extra or not isinstance(value.get("layers"), list):
                raise ConfigError(
                    f"{where} {_line_of(text, 'model')}: a [model] table takes only 'layers' "
                    f"([[model.layers]] tables), got {sorted(extra) or 'no layers'}"
                )
            out["layers"] = value["layers"]
            out["model"] = "custom"
            continue
        if name not in FIELDS or name == "layers":
            raise ConfigError(
                f"{where} {_line_of(text, key)}: unknown key {key!r} (valid keys: "
                f"{', '.join(k for k in FIELDS if k != 'layers')})"
            )
        if not type_ok(name, value):
            raise ConfigError(
                f"{where} {_line_of(text, key)}: {key!r} has the wrong type "
                f"({type(value).__name__}; expected {FIELDS[name].type})"
            )
        if isinstance(value, int) and not isinstance(value, bool) and FIELDS[name].type.startswith("float"):
            value = float(value)
        out[name] = value
    return out


def layer_toml(layer: dict[str, Any], header: str) -> list[str]:
    """One [[header]] layer table; a residual block's own layer lists follow as [[header.layers]] etc."""
    nested = {k: v for k, v in layer.items() if isinstance(v, list) and v and all(isinstance(t, dict) for t in v)}
    lines = [f"\n[[{header}]]", *(f"{k} = {toml_value(v)}" for k, v in layer.items() if k not in nested)]
    for key, tables in nested.items():
        for table in tables:
            lines += layer_toml(table, f"{header}.{key}")
    return lines


def to_toml(cfg: RunConfig, skip: tuple[str, ...] = LOCAL_KEYS) -> str:
    """The fully resolved configuration as TOML that `--config` reads back to the same run.

    Options left unset follow with the default the run used, as comments: uncommenting one pins it.
    Options this configuration's optimizer, loss, schedule and layers do not read are left out.
    """
    reads, optional = set(applicable(cfg)), option_keys()
    lines = ["# xnet run configuration: repeat this run with `xnet train --config config.toml`"]
    for name, value in cfg.to_dict().items():
        if name in skip or name == "layers" or value is None:
            continue
        if name == "model" and cfg.layers:
            continue
        if name in optional and name not in reads and not given(cfg, name):
            continue
        lines.append(f"{name} = {toml_value(value)}")
    defaults = defaults_used(cfg)
    if defaults:
        lines += ["", "# defaults this run used (the chosen optimizer's, loss's, schedule's and layers'):", *defaults]
    for layer in cfg.layers or []:
        lines += layer_toml(layer, "model.layers")
    return "\n".join(lines) + "\n"
