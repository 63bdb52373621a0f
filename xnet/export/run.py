"""Export a trained run (its folder or its model.npz) with what the run knows: normalisation, classes, config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xnet.data.datasets import class_names as dataset_class_names
from xnet.errors import XnetError
from xnet.export.onnx_model import to_onnx
from xnet.runs.restore import Restored, restore

FORMATS = ("onnx", "torch")


def checkpoint_of(source: str | Path) -> Path:
    """A run folder's model.npz, or `source` itself when it is a file."""
    source = Path(source)
    if source.is_dir():
        if not (source / "model.npz").is_file():
            raise XnetError(f"{source}: a folder without model.npz, not an xnet run folder")
        return source / "model.npz"
    if not source.exists():
        raise XnetError(f"no run folder or checkpoint at {source}")
    return source


def class_names(r: Restored) -> list[str] | None:
    """The classes' names, index by index: the dataset's own (Fashion-MNIST's "T-shirt/top"...), else "0".."K-1"."""
    return dataset_class_names(str(r.dataset.get("name", "")), r.num_classes) if r.num_classes else None


def run_metadata(r: Restored, folded: bool) -> dict[str, Any]:
    """What an exported file says about its run: config, data, classes and how inputs must be scaled."""
    norm = r.normalization
    meta: dict[str, Any] = {
        "xnet_trained_with": str(r.state.get("xnet_version", "unknown")),
        "xnet_config": dict(r.state["config"]),
        "xnet_model_spec": r.state["model_spec"],
        "task": r.task,
        "dataset": str(r.dataset.get("name", "")),
        "input_shape": list(r.input_shape),
        "normalization": norm.to_dict(),
        "input": (
            f"raw values (pixels 0..255); the graph computes (x - {norm.offset:g}) / {norm.scale:g} first"
            if folded
            else f"normalised values: give (x - {norm.offset:g}) / {norm.scale:g} of the raw values"
        ),
    }
    names = class_names(r)
    if names is not None:
        meta["class_names"] = names
    return meta


def export_run(source: str | Path, out: str | Path, fmt: str = "onnx", fold_normalization: bool = True) -> Path:
    """Write the model of run folder or checkpoint `source` to `out` as ONNX or a PyTorch state dict."""
    if fmt not in FORMATS:
        raise XnetError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    r = restore(checkpoint_of(source), "cpu")
    if fmt == "torch":
        from xnet.interop.torch_state import save_torch_state_dict

        return save_torch_state_dict(r.model, out)
    norm = r.normalization if fold_normalization else None
    return to_onnx(r.model, out, r.input_shape, norm, run_metadata(r, fold_normalization))
