"""`xnet predict CHECKPOINT INPUT...`: classify images or .npy arrays; `--csv` writes a Kaggle submission."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import typer

from xnet.cli.app import app
from xnet.errors import XnetError


def _load_npy(path: Path) -> np.ndarray:
    """Raw pixels 0..255 from a .npy file (floats in [0, 1] are scaled to 0..255)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise XnetError(f"input not found: {path}") from None
    except ValueError as e:
        raise XnetError(f"cannot read {path}: {e}") from None
    if arr.dtype.kind == "f" and arr.size and float(np.nanmax(arr)) <= 1.0:
        arr = arr * 255.0
    return arr


@app.command()
def predict(
    checkpoint: Path = typer.Argument(..., help="A model.npz written by `xnet train`."),
    inputs: list[Path] = typer.Argument(None, help="PNG/JPEG images or .npy arrays of raw pixels (0-255)."),
    invert: bool = typer.Option(False, "--invert", help="Images are dark digits on a light background."),
    csv: Path = typer.Option(None, "--csv", help="A Kaggle-style test.csv (pixel0..pixelK) to predict."),
    out: Path = typer.Option(None, "--out", help="With --csv: where to write ImageId,Label rows."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto."),
) -> None:
    """Predict the class of images, arrays or a CSV of pixels with a trained model."""
    from xnet.data import prepare_images, read_csv
    from xnet.images import mnist_like, read_image
    from xnet.train.restore import restore

    if not inputs and csv is None:
        raise typer.BadParameter("give INPUT files or --csv FILE")
    if csv is not None and out is None:
        raise typer.BadParameter("--csv needs --out FILE for the submission")
    r = restore(checkpoint, device)
    shape = tuple(r.dataset["input_shape"])
    norm = r.dataset["normalization"]
    side = shape[-1] if len(shape) == 3 else int(math.isqrt(int(np.prod(shape))))
    names, batches = [], []
    for path in inputs or []:
        if path.suffix.lower() == ".npy":
            arr = prepare_images(_load_npy(path), norm, shape)
            names += [str(path)] if len(arr) == 1 else [f"{path}[{i}]" for i in range(len(arr))]
        else:
            arr = prepare_images(mnist_like(read_image(path, invert), side), norm, shape)
            names.append(str(path))
        batches.append(arr)
    if csv is not None:
        pixels, _ = read_csv(csv)
        batches.append(prepare_images(pixels, norm, shape))
    x = np.concatenate(batches)
    outputs = _forward(r, x)
    if r.dataset["task"] == "regression":
        for name, y in zip(names, outputs, strict=False):
            print(f"{name}: {np.array2string(y, precision=4)}")
        return
    probs = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = probs.argmax(axis=1)
    for i, name in enumerate(names):
        print(f"{name}: {labels[i]} ({probs[i, labels[i]]:.1%})")
    if csv is not None:
        from xnet.atomic import atomic_write_text

        rows = labels[len(names) :]
        text = "ImageId,Label\n" + "".join(f"{i + 1},{k}\n" for i, k in enumerate(rows))
        atomic_write_text(out, text)
        print(f"wrote {len(rows)} predictions to {out}")


def _forward(r, x: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Model outputs for host inputs, in batches on the model's device: (N, ...) -> (N, K)."""
    parts = []
    for i in range(0, len(x), batch):
        xb = r.backend.asarray(x[i : i + batch], r.config.dtype)
        parts.append(r.backend.to_numpy(r.model.forward(xb)).astype(np.float64))
    return np.concatenate(parts)
