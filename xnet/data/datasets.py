"""`load_dataset`: one entry point from a dataset name to prepared host arrays."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xnet.checks import check_bool, check_int
from xnet.data.csv import image_shape, read_csv
from xnet.data.idx import read_idx_pair
from xnet.data.mnist import MNIST, IdxSet, locate_mnist, read_mnist
from xnet.data.names import DATASET_FORMS, IDX_SETS, check_dataset, data_dir_of, idx_files, parse_name, resolve_path
from xnet.data.pixels import PIXEL_DTYPE, Pixels
from xnet.data.prepare import (
    PIXEL_MODES,
    Normalization,
    as_normalization,
    fit_normalization,
    split_indices,
)
from xnet.data.synthetic import SINE_DEFAULTS, make_sine
from xnet.errors import ConfigError, DataError


def class_names(dataset: str, num_classes: int) -> list[str]:
    """The names of classes 0..K-1 of dataset `dataset`: its own where it has them (Fashion-MNIST), else "0".."K-1"."""
    spec = IDX_SETS.get(dataset.strip())
    names = spec.class_names if spec is not None else None
    if names is not None and len(names) == num_classes:
        return list(names)
    return [str(k) for k in range(num_classes)]


class Split:
    """One split's host arrays: x (N, *input_shape) float32, y (N,) int64 / (N, 1) float32 / None.

    Built from `Pixels` (raw uint8 images and their normalisation), a split holds those as
    `inputs` and builds the float32 `x` only when something reads it (then keeps it): training,
    evaluation and the run's checks read `inputs`, so the images stay uint8 until each batch.
    """

    def __init__(self, x: np.ndarray | Pixels, y: np.ndarray | None):
        self.inputs: np.ndarray | Pixels = x  # what a DataLoader takes: the float array, or the Pixels
        self.y = y
        self._x: np.ndarray | None = None if isinstance(x, Pixels) else x

    @property
    def x(self) -> np.ndarray:
        """The float32 inputs (N, *input_shape), built from the pixels at the first read."""
        if self._x is None:
            self._x = self.inputs.materialize()
        return self._x

    @x.setter
    def x(self, value: np.ndarray | Pixels) -> None:
        self.inputs = value
        self._x = None if isinstance(value, Pixels) else value

    @property
    def materialized(self) -> bool:
        """Whether the float32 `x` exists (always, unless the split holds pixels no one has read as floats)."""
        return self._x is not None

    def reshaped(self, *input_shape: int) -> Split:
        """The same samples with inputs of another shape per sample, e.g. (784,) for (1, 28, 28)."""
        return Split(self.inputs.reshape(len(self), *input_shape), self.y)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def __repr__(self) -> str:
        y = None if self.y is None else f"{self.y.dtype} {self.y.shape}"
        kind = "pixels" if isinstance(self.inputs, Pixels) else str(self.inputs.dtype)
        return f"Split(x={kind} {self.inputs.shape}, y={y})"


@dataclass
class Dataset:
    """A prepared dataset: train/val/test splits and what a model and `predict` need to know."""

    name: str
    train: Split
    val: Split | None
    test: Split | None
    num_classes: int | None  # None for regression (and unlabelled data)
    input_shape: tuple[int, ...]  # per sample: (1, 28, 28), (784,), (1,)
    task: str  # "classification" | "regression"
    source: str  # where the data came from, for people
    normalization: Normalization = field(default_factory=Normalization)

    def splits(self) -> dict[str, Split]:
        """The splits present, by name."""
        out = {"train": self.train, "val": self.val, "test": self.test}
        return {k: v for k, v in out.items() if v is not None}

    def describe(self) -> str:
        """One line: sizes, shape, classes and source."""
        sizes = " / ".join(f"{len(s)} {k}" for k, s in self.splits().items())
        kind = f"{self.num_classes} classes" if self.num_classes else self.task
        return f"{self.name}: {sizes}, input {self.input_shape}, {kind}; {self.source}"


@dataclass
class _Raw:
    """A dataset as read, before preparation (x rows are samples, any per-sample shape)."""

    train_x: np.ndarray
    train_y: np.ndarray | None
    test_x: np.ndarray | None
    test_y: np.ndarray | None
    num_classes: int | None
    task: str
    source: str


def _num_classes(*labels: np.ndarray | None) -> int | None:
    present = [y for y in labels if y is not None and y.size]
    return int(max(int(y.max()) for y in present)) + 1 if present else None


def _load_mnist(data_dir: Any, options: dict[str, Any], spec: IdxSet = MNIST) -> _Raw:
    files, source = locate_mnist(data_dir, spec=spec, **options)
    trx, try_, tex, tey = read_mnist(files)
    return _Raw(trx, try_, tex, tey, 10, "classification", source)


def _load_idx(folder: Path) -> _Raw:
    f = idx_files(folder)
    trx, trl = read_idx_pair(f["train_images"], f["train_labels"])
    tex = tel = None
    if f["test_images"] is not None:
        tex, tel = read_idx_pair(f["test_images"], f["test_labels"])
        if tex.shape[1:] != trx.shape[1:]:
            raise DataError(
                f"{folder}: test images are {tex.shape[1:]} but training images {trx.shape[1:]}"
            )
    return _Raw(trx, trl, tex, tel, _num_classes(trl, tel), "classification", f"idx files from {folder}")


def _load_csv(path: Path) -> _Raw:
    x, y = read_csv(path)
    labels = "labelled" if y is not None else "no labels"
    x = x.reshape(x.shape[0], *image_shape(x.shape[1]))
    return _Raw(x, y, None, None, _num_classes(y), "classification", f"csv {path} ({len(x)} rows, {labels})")


def _load_sine(seed: int, options: dict[str, Any]) -> _Raw:
    params = {**SINE_DEFAULTS, **options}
    try:
        x, y, xt, yt = make_sine(seed=seed, **params)
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None
    p = params
    source = (
        f"sine y = {p['a']:g}*sin({p['b']:g}x) + {p['c']:g}*cos({p['d']:g}x), "
        f"x ~ U({p['low']:.4g}, {p['high']:.4g}), noise {p['noise']:g}, seed {seed}"
    )
    return _Raw(x, y, xt, yt, None, "regression", source)


def _read(name: str, data_dir: Path | None, seed: int, options: dict[str, Any]) -> tuple[str, _Raw]:
    kind, arg = parse_name(name, options)
    data_dir = data_dir_of(data_dir, kind)
    if kind in IDX_SETS:
        return kind, _load_mnist(data_dir, options, IDX_SETS[kind])
    if kind == "sine":
        return "sine", _load_sine(seed, options)
    path = resolve_path(arg, data_dir)
    return name.strip(), _load_idx(path) if kind == "idx" else _load_csv(path)


def _check_args(seed: Any, flatten: Any) -> None:
    """TypeError naming the argument: a seed must be an int, flatten a bool (the string "no" is not False)."""
    check_int("load_dataset", "seed", seed, minimum=0)
    check_bool("load_dataset", "flatten", flatten)


def _check_limit(limit: Any) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ConfigError(f"limit must be an integer >= 1 or None, got {limit!r}")
    return int(limit)


def _first(x: np.ndarray, n: int) -> np.ndarray:
    """The first n rows of x, copied when fewer than all: a split keeps raw pixels, and a view of
    the rows kept would keep the whole file's array alive."""
    return x[:n].copy() if n < len(x) else x


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    normalize: str | Normalization | dict = "unit",
    val_split: float | int = 0.0,
    seed: int = 0,
    flatten: bool = False,
    limit: int | None = None,
    **options: Any,
) -> Dataset:
    """Load and prepare "mnist", "fashion-mnist", "idx:DIR", "csv:FILE" or "sine".

    A relative DIR/FILE that does not exist is looked for under data_dir if given (a folder that
    must exist, except for MNIST, which is downloaded into it), else under $XNET_DATA_DIR.

    Images become float32 (N, C, H, W), or (N, C*H*W) with flatten=True (uint8 images are kept
    as `Pixels` and a split's float32 `x` is built when first read); labels int64 (N,);
    sine gives x, y float32 (N, 1). normalize: unit (x/255), centered ((x-127.5)/255),
    standard (training-split mean/std), none, or a saved Normalization/dict applied as is.
    Pixel modes leave sine data unscaled. val_split: fraction (or count) of the training set
    held out, seeded. limit: keep the first N training and N//6 test samples. options: per
    dataset (mnist: download, mirrors, timeout, progress; sine: a, b, c, d, n_train, n_test,
    noise, low, high).
    """
    limit = _check_limit(limit)
    _check_args(seed, flatten)
    dname, raw = _read(name, data_dir, seed, options)
    source = raw.source
    trx, tr_y, tex, te_y = raw.train_x, raw.train_y, raw.test_x, raw.test_y
    if limit is not None:
        n_test = max(1, limit // 6)
        trx, tr_y = _first(trx, limit), None if tr_y is None else tr_y[:limit]
        if tex is not None:
            tex, te_y = _first(tex, n_test), None if te_y is None else te_y[:n_test]
        source += f"; first {len(trx)} training" + ("" if tex is None else f", {len(tex)} test")
    tr_idx, val_idx = split_indices(len(trx), val_split, seed)

    if isinstance(normalize, str):
        mode = "none" if raw.task == "regression" and normalize in PIXEL_MODES else normalize
        norm = fit_normalization(mode, trx, tr_idx)
    else:
        norm = as_normalization(normalize)

    sample = trx.shape[1:]
    if len(sample) == 2:  # (H, W) -> (1, H, W): images are NCHW at the boundary
        sample = (1, *sample)
    shape = (int(np.prod(sample)),) if flatten else tuple(int(s) for s in sample)

    def prepared(x: np.ndarray, y: np.ndarray | None, idx: np.ndarray | None) -> Split:
        ys = None if y is None else (y if idx is None else y[idx])
        if x.dtype == PIXEL_DTYPE:  # images stay uint8 (a quarter of float32) until each batch is served
            return Split(Pixels((x if idx is None else x[idx]).reshape(-1, *shape), norm), ys)
        return Split(norm.apply(x, idx).reshape(-1, *shape), ys)

    train = prepared(trx, tr_y, tr_idx)
    val = None if val_idx is None else prepared(trx, tr_y, val_idx)
    test = None if tex is None else prepared(tex, te_y, None)
    return Dataset(dname, train, val, test, raw.num_classes, shape, raw.task, source, norm)


# DATASET_FORMS and check_dataset live in names.py; imported from here too, as before
__all__ = ["DATASET_FORMS", "Dataset", "Split", "check_dataset", "class_names", "load_dataset"]
