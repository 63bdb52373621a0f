"""`xnet predict CHECKPOINT INPUT...`: classify images or .npy arrays; `--csv` writes a Kaggle submission."""

from __future__ import annotations

import csv as csvlib
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import typer

from xnet.errors import DataError, XnetError

_NPY_MAGIC = b"\x93NUMPY"


def _load_npy(path: Path, pixels: bool) -> np.ndarray:
    """The array in a .npy file; for a pixel model, floats in [0, 1] are scaled to 0..255."""
    try:
        with open(path, "rb") as f:
            magic = f.read(len(_NPY_MAGIC))
    except FileNotFoundError:
        raise XnetError(f"input not found: {path}") from None
    except OSError as e:
        raise XnetError(f"{path}: cannot read ({e.strerror or e})") from None
    if magic != _NPY_MAGIC:
        raise DataError(f"{path}: not a NumPy array file (.npy)")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        # never pass on NumPy's advice to load pickles: a pickle can run code
        problem = "it holds Python objects, not numbers" if "pickle" in str(e) else str(e)
        raise DataError(f"{path}: cannot read the array ({problem})") from None
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: damaged .npy file ({e})") from None
    finite = arr.dtype.kind == "f" and arr.size and np.isfinite(arr).all()
    if pixels and finite and arr.min() >= 0 and arr.max() <= 1.0:
        arr = arr * 255.0
    return arr


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (hard and symbolic links included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _check_out(out: Path, checkpoint: Path, csv: Path | None, inputs: list[Path]) -> None:
    """Refuse an --out that would overwrite the checkpoint or an input."""
    for what, path in [("the checkpoint", checkpoint), ("the --csv input", csv)] + [("an input", p) for p in inputs]:
        if path is not None and _same_file(out, path):
            raise typer.BadParameter(f"--out {out} is {what} {path}: writing would overwrite it; choose another file")


def _image_side(r: Any) -> int:
    """The side S of the square one-channel images a model takes ((1, S, S) or (S*S,)); else an error."""
    shape = r.input_shape
    side = math.isqrt(int(np.prod(shape)))
    if r.task == "classification" and side > 1 and shape in ((1, side, side), (side * side,)):
        return side
    if r.task == "regression":
        raise DataError(f"model {r.path} is a regression model taking inputs of shape {shape}, not images: "
                        "give .npy arrays of that shape")  # fmt: skip
    raise DataError(f"model {r.path} takes inputs of shape {shape}; image files become square one-channel "
                    "images, so give .npy arrays instead")  # fmt: skip


def _prepare(r: Any, raw: np.ndarray, source: str) -> np.ndarray:
    """Checked, normalised model inputs (N, *input_shape) from raw values."""
    from xnet.data.prepare import PIXEL_RANGE, prepare_images

    pixels = r.task == "classification"  # every classification dataset holds 0..255 pixels
    noun = "images" if pixels else "inputs"
    return prepare_images(raw, r.normalization, r.input_shape, PIXEL_RANGE if pixels else None, f"{source}: {noun}")


def _read_inputs(r: Any, inputs: list[Path], invert: bool) -> tuple[list[str], list[np.ndarray]]:
    """(a name per sample, prepared batches) from image files and .npy arrays."""
    from xnet.data.images import mnist_like, read_image

    names, batches = [], []
    for path in inputs:
        if path.suffix.lower() == ".npy":
            arr = _prepare(r, _load_npy(path, r.task == "classification"), str(path))
            names += [str(path)] if len(arr) == 1 else [f"{path}[{i}]" for i in range(len(arr))]
        else:
            side = _image_side(r)
            arr = _prepare(r, mnist_like(read_image(path, invert), side), str(path))
            names.append(str(path))
        batches.append(arr)
    return names, batches


def predict(
    checkpoint: Path = typer.Argument(..., help="A model.npz written by `xnet train`."),
    inputs: list[Path] = typer.Argument(
        None, help="PNG/JPEG images or .npy arrays: pixels 0-255 (or floats 0-1), or a regression model's inputs."
    ),
    invert: bool = typer.Option(False, "--invert", help="Images are dark digits on a light background."),
    csv: Path = typer.Option(None, "--csv", help="A Kaggle-style test.csv (pixel0..pixelK) to predict."),
    out: Path = typer.Option(
        None, "--out", help="Write the predictions as CSV: ImageId,Label rows for --csv, else Input,Label,Probability."
    ),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto."),
) -> None:
    """Predict the class of images, arrays or a CSV of pixels with a trained model."""
    from xnet.data.csv import read_pixels
    from xnet.runs.restore import restore

    inputs = inputs or []
    if not inputs and csv is None:
        raise typer.BadParameter("give INPUT files or --csv FILE")
    if csv is not None and out is None:
        raise typer.BadParameter("--csv needs --out FILE for the submission")
    if csv is not None and inputs:  # one --out file cannot hold both without breaking Kaggle's exact format
        raise typer.BadParameter(
            "--out with --csv writes the CSV's predictions in Kaggle format; predict the images in a separate call"
        )
    if out is not None:
        _check_out(out, checkpoint, csv, inputs)
    r = restore(checkpoint, device)
    names, batches = _read_inputs(r, inputs, invert)
    if csv is not None:
        batches.append(_prepare(r, read_pixels(csv, int(np.prod(r.input_shape))), str(csv)))
    outputs = _forward(r, np.concatenate(batches))
    header, rows = _table(r, outputs)
    for name, row in zip(names, rows, strict=False):
        print(f"{name}: {_shown(r, row)}")
    if out is not None:
        _write_table(out, r, header, names, rows, csv is not None)


def _write_table(out: Path, r: Any, header: list[str], names: list[str], rows: list[list[Any]], kaggle: bool) -> None:
    """Write the predictions as CSV, atomically: the --csv rows as a Kaggle submission, else one row per input."""
    from xnet.atomic import atomic_write_text

    if kaggle:  # only the CSV's rows, numbered from 1 as Kaggle's ImageId; Label alone, as Kaggle wants
        width = len(header)
        table = [["ImageId", *header]] + [[i + 1, *row[:width]] for i, row in enumerate(rows[len(names) :])]
    else:
        table = [["Input", *header, *(["Probability"] if r.task == "classification" else [])]]
        table += [[name, *row] for name, row in zip(names, rows, strict=True)]
    buf = io.StringIO()
    csvlib.writer(buf, lineterminator="\n").writerows(table)
    atomic_write_text(out, buf.getvalue())
    n = len(table) - 1
    print(f"wrote {n} prediction{'s' * (n != 1)} to {out}")


def _table(r: Any, outputs: np.ndarray) -> tuple[list[str], list[list[Any]]]:
    """(value column names, a row per sample): [label, probability] for classifiers, the outputs for regression."""
    if r.task == "regression":
        values = outputs.reshape(len(outputs), -1)
        names = ["Value"] if values.shape[1] == 1 else [f"Value{k}" for k in range(values.shape[1])]
        return names, [[f"{v:.6g}" for v in row] for row in values]
    probs = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = probs.argmax(axis=1)
    return ["Label"], [[int(k), f"{p[k]:.4f}"] for k, p in zip(labels, probs, strict=True)]


def _shown(r: Any, row: list[Any]) -> str:
    """One sample's prediction as printed: '7 (98.1%)' or the output values."""
    if r.task == "regression":
        return " ".join(row)
    return f"{row[0]} ({float(row[1]):.1%})"


def _forward(r: Any, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Model outputs for host inputs, in batches on the model's device: (N, ...) -> (N, K)."""
    parts = []
    for i in range(0, len(x), batch):
        xb = r.backend.asarray(x[i : i + batch], r.config.dtype)
        parts.append(r.backend.to_numpy(r.model.forward(xb)).astype(np.float64))
    return np.concatenate(parts)
