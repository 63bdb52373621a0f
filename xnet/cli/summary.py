"""`xnet summary CONFIG.toml|model.npz|RUN_DIR`: the model's layers, output shapes and parameter counts."""

from __future__ import annotations

from pathlib import Path

import typer

from xnet.errors import XnetError


def _from_config(path: Path) -> tuple[str, str]:
    """(heading, table) for the model a config file describes, on the data it names."""
    import numpy as np

    from xnet.backends import get_backend
    from xnet.config import RunConfig, config_dict_from_toml, validate
    from xnet.data import load_dataset
    from xnet.nn.module import build_on
    from xnet.runs.build import build_model

    cfg = validate(RunConfig(**config_dict_from_toml(path)), training=False)
    # a few samples tell the input shape and the number of outputs; the rest is not needed
    ds = load_dataset(cfg.dataset, data_dir=cfg.data_dir, normalize=cfg.normalize, seed=cfg.seed, limit=60)
    outputs = ds.num_classes or int(np.prod(ds.train.y.shape[1:]))
    with build_on(get_backend("cpu", seed=cfg.seed), cfg.dtype):
        model = build_model(cfg, tuple(ds.input_shape), outputs)
    return f"{path}: model {cfg.model!r} on {cfg.dataset}, input {tuple(ds.input_shape)}", model.summary(
        tuple(ds.input_shape)
    )


def _from_checkpoint(path: Path) -> tuple[str, str]:
    """(heading, table) for the model a checkpoint holds, on its recorded input shape."""
    from xnet.runs.restore import restore

    r = restore(path)
    heading = f"{path}: {r.describe()} trained on {r.dataset.get('name', '?')}, input {r.input_shape}"
    return heading, r.model.summary(r.input_shape)


def summary_text(target: Path) -> str:
    """The heading line and the summary table of a config file, a checkpoint or a run folder."""
    if target.is_dir():
        checkpoint = target / "model.npz"
        if not checkpoint.is_file():
            raise XnetError(f"{target}: expected a run folder holding model.npz, found none")
        target = checkpoint
    if not target.exists():
        raise XnetError(f"{target}: no such file (expected a config .toml, a model.npz or a run folder)")
    if target.suffix == ".toml":
        heading, table = _from_config(target)
    elif target.suffix == ".npz":
        heading, table = _from_checkpoint(target)
    else:
        kind = target.suffix or "file without a suffix"
        raise XnetError(f"{target}: expected a config .toml, a model.npz or a run folder, got a {kind}")
    return f"{heading}\n{table}"


def summary(
    target: Path = typer.Argument(..., help="A config file (.toml), a checkpoint (model.npz) or a run folder."),
) -> None:
    """Print one row per layer (nested for residual blocks): name, output shape, parameter count; then totals."""
    print(summary_text(target))
