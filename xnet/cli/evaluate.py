"""`xnet evaluate CHECKPOINT`: accuracy, loss, per-class precision/recall/F1, confusion matrix."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from xnet.cli.app import app


@app.command()
def evaluate(
    checkpoint: Path = typer.Argument(..., help="A model.npz written by `xnet train`."),
    dataset: str = typer.Option(None, help="mnist, idx:DIR, csv:FILE or sine [default: the run's dataset]."),
    data_dir: str = typer.Option(None, "--data-dir", help="Folder holding the dataset's files."),
    split: str = typer.Option("test", help="Which split to evaluate: test, train or val."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Evaluate a saved model on a dataset split."""
    from xnet.data import load_dataset
    from xnet.train.restore import restore
    from xnet.train.run import build_loss
    from xnet.train.trainer import Trainer

    if split not in ("test", "train", "val"):
        raise typer.BadParameter(f"--split: expected test, train or val, got {split!r}")
    r = restore(checkpoint, device)
    cfg = r.config
    ds = load_dataset(
        dataset or cfg.dataset, data_dir=data_dir or cfg.data_dir, normalize=r.dataset["normalization"],
        val_split=cfg.val_split if split == "val" else 0.0, seed=cfg.seed,
    )  # fmt: skip
    data = getattr(ds, split)
    if data is None:
        raise typer.BadParameter(f"--split {split}: the dataset has no {split} split")
    with_loss = build_loss(cfg, ds.task).to(r.backend, cfg.dtype)
    trainer = Trainer(r.model, with_loss, None, backend=r.backend, meta={"num_classes": ds.num_classes})
    result = trainer.evaluate(data)
    if as_json:
        print(json.dumps({"checkpoint": str(checkpoint), "split": split, **result.to_dict()}, indent=2))
        return
    print(f"{checkpoint} on {ds.source}, {split} split ({len(data.x)} samples)")
    if result.accuracy is None:
        print(f"loss (MSE) {result.loss:.6g}")
        return
    print(f"accuracy {result.accuracy:.2%}   loss {result.loss:.4f}")
    print(format_report(result))


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
