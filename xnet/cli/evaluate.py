"""`xnet evaluate CHECKPOINT`: accuracy, loss, per-class precision/recall/F1, confusion matrix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import typer

from xnet.cli.text import help_text
from xnet.errors import DataError

SPLITS = ("test", "train", "val")


def evaluate(
    checkpoint: Path = typer.Argument(..., help="A run folder of `xnet train`, or a checkpoint (model.npz, best.npz)."),
    dataset: str = typer.Option(
        None,
        help=help_text(
            "mnist, fashion-mnist, idx:DIR, csv:FILE or sine, used in full "
            "[default: the run's dataset, split as the run split it]"
        ),
    ),
    data_dir: str = typer.Option(None, "--data-dir", help="Folder holding the dataset's files."),
    split: str = typer.Option("test", help="Which split to evaluate: test, train or val."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    best: bool = typer.Option(
        False, "--best", help="The run's best.npz (its best epoch by validation loss, or training loss without a "
        "validation split) instead of model.npz (its last).",
    ),  # fmt: skip
) -> None:
    """Evaluate a saved model on a dataset split."""
    from xnet.data import load_dataset
    from xnet.runs.build import build_loss
    from xnet.runs.restore import restore
    from xnet.train.trainer import Trainer

    if split not in SPLITS:
        raise typer.BadParameter(f"--split: expected test, train or val, got {split!r}")
    checkpoint = checkpoint_of(checkpoint, best)
    r = restore(checkpoint, device)
    cfg = r.config
    name = dataset or cfg.dataset
    # the run's own data: its train and val splits are rebuilt exactly (same limit, split and seed), so
    # val holds no training sample and matches metrics.json; the test set was never trained on, so it
    # is used whole, as a user evaluating a model expects (a --limit run saw only limit // 6 of it)
    own = dataset is None
    limit = cfg.limit if own and split != "test" else None
    ds = load_dataset(
        name, data_dir=data_dir or cfg.data_dir, normalize=r.dataset["normalization"],
        val_split=cfg.val_split if own or split == "val" else 0.0, seed=cfg.seed, limit=limit,
    )  # fmt: skip
    data = _checked_split(r, ds, name, split)
    with_loss = build_loss(cfg, ds.task).to(r.backend, cfg.dtype)
    trainer = Trainer(r.model, with_loss, None, backend=r.backend, meta={"num_classes": r.num_classes})
    result = trainer.evaluate(data)
    if as_json:
        record = {"checkpoint": str(checkpoint), "split": split, "samples": len(data), "limit": limit}
        print(json.dumps({**record, **result.to_dict()}, indent=2))
        return
    print(f"{checkpoint} on {ds.source}, {split} split ({len(data)} samples{_limit_note(cfg.limit, own, split)})")
    if result.accuracy is None:
        print(f"loss (MSE) {result.loss:.6g}")
        return
    print(f"accuracy {result.accuracy:.2%}   loss {result.loss:.4f}")
    print(format_report(result))


def checkpoint_of(path: Path, best: bool) -> Path:
    """The checkpoint `xnet evaluate PATH [--best]` reads: a run folder's model.npz or best.npz, or the file given
    (with --best, the best.npz beside it)."""
    if not path.is_dir() and not best:
        return path
    folder = path if path.is_dir() else path.parent
    chosen = folder / ("best.npz" if best else "model.npz")
    if not chosen.is_file():
        from xnet.errors import XnetError

        held = ", ".join(sorted(p.name for p in folder.glob("*.npz"))) or "no checkpoint"
        raise XnetError(f"{'--best: ' if best else ''}no {chosen.name} in {folder} (it holds {held})")
    return chosen


def _limit_note(limit: int | None, own: bool, split: str) -> str:
    """Which samples a run trained with --limit is evaluated on, for the output header."""
    if limit is None:
        return ""
    if own and split != "test":
        return f", the run's --limit {limit}"
    if own:
        return f"; the whole test set: the run's --limit {limit} tested on the first {max(1, limit // 6)}"
    return f"; the whole dataset, not the run's --limit {limit}"


def _checked_split(r: Any, ds: Any, name: str, split: str) -> Any:
    """The split to evaluate, after checking that the model and the data fit each other."""
    model = f"model {r.path} is {r.describe()}"
    if ds.task != r.task:
        raise DataError(f"{model}; dataset {name!r} is a {ds.task} task")
    data = getattr(ds, split)
    if data is None:
        have = [s for s in SPLITS if getattr(ds, s) is not None]
        why = " (the run was trained without --val-split)" if split == "val" else ""
        raise typer.BadParameter(
            f"--split {split}: dataset {name!r} has no {split} split{why}; use --split {' or '.join(have)}"
        )
    if int(np.prod(ds.input_shape)) != int(np.prod(r.input_shape)):
        raise DataError(f"{model} taking inputs of shape {r.input_shape}; dataset {name!r} has {ds.input_shape}")
    if tuple(ds.input_shape) != r.input_shape:  # same values, other layout: (784,) vs (1, 28, 28)
        data = data.reshaped(*r.input_shape)
    if r.task == "classification":
        _check_labels(data.y, r.num_classes, f"{model}; dataset {name!r}")
    return data


def _check_labels(y: np.ndarray | None, k: int, what: str) -> None:
    """Labels must exist and lie in [0, k)."""
    if y is None:
        raise DataError(f"{what} has no labels (a CSV needs a 'label' first column) to evaluate against")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= k):
        raise DataError(f"{what} has labels {int(y.min())}..{int(y.max())}, outside the model's classes 0..{k - 1}")


def format_report(result) -> str:
    """Per-class table and confusion matrix as text."""
    rep, cm = result.report, result.confusion
    lines = ["", "class  precision  recall     f1  support"]
    for k in range(len(rep.f1)):
        lines.append(f"{k:>5}  {rep.precision[k]:>9.4f}  {rep.recall[k]:>6.4f}  {rep.f1[k]:>5.4f}  {rep.support[k]:>7}")
    lines += ["", "confusion matrix (rows: true class, columns: predicted)"]
    width = max(5, len(str(cm.max())) + 1)
    lines.append("     " + "".join(f"{k:>{width}}" for k in range(cm.shape[1])))
    for k, row in enumerate(cm):
        lines.append(f"{k:>5}" + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)
