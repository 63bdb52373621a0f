"""`xnet options [NAME]`: which `xnet train` options each optimizer, loss, schedule and model reads."""

from __future__ import annotations

import dataclasses

import typer

from xnet.cli.text import help_text
from xnet.config import CHOICES, DEFAULTS, RunConfig, toml_value
from xnet.errors import XnetError

HEADER = (
    "Which `xnet train` options each choice reads, with the default it uses. A flag is --name with dashes\n"
    "(--loss-reduction); the TOML key and the Python argument are the name itself, except where noted at the end.\n"
    "An option the chosen optimizer, loss, schedule or model does not read is refused.\n"
)
# the model options' defaults that are no single value
_MODEL_DEFAULTS = {
    "init": "kaiming for relu, leaky_relu, gelu, silu and elu; xavier otherwise",
    "bias_init": "zeros (init torch: torch)",
}


def options(
    name: str = typer.Argument(
        None, help=help_text("An optimizer, loss, schedule, activation or model (its options), or an option "
                             "(what reads it) [default: everything].")
    ),  # fmt: skip
) -> None:
    """List which options each optimizer, loss, schedule and model reads, with their defaults."""
    print(listing(name), end="")


def _setting(key: str, cfg: RunConfig) -> str:
    """'beta1 = 0.9' or 'gamma: so that the last epoch runs at 1% of lr'."""
    from xnet.config.options import default_of

    if key in _MODEL_DEFAULTS:
        return f"{key}: {_MODEL_DEFAULTS[key]}"
    value, literal = default_of(key, cfg)
    if value is None:
        return f"{key}: off"
    return f"{key} = {toml_value(value)}" if literal else f"{key}: {value}"


def _sections() -> dict[str, list[tuple[str, str]]]:
    """Per kind, (choice, its options with defaults) rows in the order `xnet options` prints them."""
    from xnet.config.options import EVERY, KINDS, MODEL_OPTIONS

    sections: dict[str, list[tuple[str, str]]] = {}
    for kind, table in KINDS.items():
        rows = []
        if EVERY[kind]:
            cfg = DEFAULTS
            rows.append(("every one", ", ".join(_setting(k, cfg) if k != "lr" else "lr" for k in EVERY[kind])))
        for choice in CHOICES[kind]:
            cfg = dataclasses.replace(DEFAULTS, **{kind: choice})
            keys = table[choice] + (("lr",) if kind == "optimizer" else ())
            if kind == "optimizer" and choice == "adamw":
                keys += ("weight_decay",)  # the one optimizer whose default decay is not 0
            rows.append((choice, ", ".join(_setting(k, cfg) for k in keys) or "no options of its own"))
        sections[kind] = rows
    leaky = dataclasses.replace(DEFAULTS, activation="leaky_relu")
    elu = dataclasses.replace(DEFAULTS, activation="elu")
    sections["activation"] = [
        ("leaky_relu", _setting("alpha", leaky)),
        ("elu", _setting("alpha", elu)),
        ("gelu", 'the exact form; layer tables take approximate = "tanh"'),
        ("softplus", "beta 1, threshold 20 (layer tables set them)"),
        ("others", "no options of their own"),
    ]
    model_rows = []
    for model, keys in MODEL_OPTIONS.items():
        text = ", ".join(keys) if keys else "each [[model.layers]] table sets its layer's arguments"
        model_rows.append((model, text))
    model_rows.append(
        ("", "alpha needs activation leaky_relu or elu; bn_momentum and bn_eps need batch_norm (or bn-cnn)")
    )
    sections["model"] = model_rows
    return sections


def _python_notes() -> list[str]:
    from xnet.config.options import PYTHON_NAMES

    width = max(map(len, PYTHON_NAMES))
    return [f"  {k:<{width}}  {v}" for k, v in PYTHON_NAMES.items()]


def listing(name: str | None = None) -> str:
    """The text `xnet options` prints: every section, or what concerns `name` (a choice or an option)."""
    sections = _sections()
    if name is None:
        lines = [HEADER]
        for kind, rows in sections.items():
            width = max(len(c) for c, _ in rows)
            lines.append(f"{kind} (--{kind})")
            lines += [f"  {choice:<{width}}  {text}" for choice, text in rows]
            lines.append("")
        lines.append("Names and units that differ in the Python API:")
        lines += _python_notes()
        return "\n".join(lines) + "\n"
    choice = name.strip().lower()
    found = [f"{kind} {choice}: {text}\n" for kind, rows in sections.items() for c, text in rows if c == choice]
    key = choice.replace("-", "_")
    if key in {f.name for f in dataclasses.fields(RunConfig)}:
        found.append(_option_users(key, sections))  # "momentum" is an optimizer and an option
    if not found:
        valid = sorted({c for rows in sections.values() for c, _ in rows if c and c not in ("every one", "others")})
        raise XnetError(f"options: {name!r} is neither a choice ({', '.join(valid)}) nor an option of xnet train")
    return "".join(found)


def _option_users(key: str, sections: dict[str, list[tuple[str, str]]]) -> str:
    """What reads the option `key`: the choices whose row names it."""
    from xnet.config.options import PYTHON_NAMES

    users = []
    for kind, rows in sections.items():
        for choice, text in rows:
            if any(part.split(" ")[0].rstrip(":") == key for part in text.split(", ")):
                users.append(f"{kind} {choice}" if choice != "every one" else f"every {kind}")
                if choice == "every one":
                    break  # the choices' own rows add nothing
    reads = f"read by {', '.join(users)}" if users else "read by every run"
    python = f"; Python: {PYTHON_NAMES[key]}" if key in PYTHON_NAMES else ""
    return f"option {key}: {reads}{python}\n"
