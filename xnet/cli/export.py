"""`xnet export RUN_OR_MODEL OUT`: a trained model as ONNX (with its input scaling) or a PyTorch state dict."""

from __future__ import annotations

from pathlib import Path

import typer


def export(
    source: Path = typer.Argument(..., help="A run folder or the model.npz that `xnet train` wrote."),
    out: Path = typer.Argument(..., help="The file to write: model.onnx, or model.pt with --format torch."),
    fmt: str = typer.Option("onnx", "--format", help="onnx, or torch (a .pt state dict)."),
    fold_normalization: bool = typer.Option(
        True, "--fold-normalization/--no-fold-normalization",
        help="ONNX: the graph takes raw values (pixels 0..255) and scales them as the run did; "
        "without it, inputs must be scaled already (the metadata says how).",
    ),  # fmt: skip
) -> None:
    """Export a trained model for use outside xnet (onnxruntime, PyTorch)."""
    from xnet.export.run import export_run

    if out.resolve() == source.resolve() or (source.is_dir() and out.resolve() == (source / "model.npz").resolve()):
        raise typer.BadParameter(f"{out} is the checkpoint being exported: writing would overwrite it")
    path = export_run(source, out, fmt, fold_normalization)
    print(f"wrote {path} ({fmt})")
