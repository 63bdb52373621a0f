"""`load_dataset`: one entry point from a dataset name to prepared host arrays."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xnet.checks import check_bool, check_int
from xnet.data.csv import image_shape, read_csv
from xnet.data.fashion_mnist import FASHION_MNIST
from xnet.data.idx import read_idx_pair
from xnet.data.mnist import DATA_DIR_ENV, MNIST, MNIST_FILES, IdxSet, data_folder, locate_mnist, read_mnist
from xnet.data.prepare import (
    PIXEL_MODES,
    Normalization,
    as_normalization,
    fit_normalization,
    split_indices,
)
from xnet.data.synthetic import SINE_DEFAULTS, make_sine
from xnet.errors import ConfigError, DataError

DATASET_FORMS = ("mnist", "fashion-mnist", "idx:DIR", "csv:FILE", "sine")
# the named datasets of four IDX files, found or downloaded as MNIST is (mnist.py)
IDX_SETS: dict[str, IdxSet] = {"mnist": MNIST, "fashion-mnist": FASHION_MNIST}
_OPTIONS = {
    "mnist": ("download", "mirrors", "timeout", "progress"),
    "fashion-mnist": ("download", "mirrors", "timeout", "progress"),
    "idx": (),
    "csv": (),
    "sine": tuple(SINE_DEFAULTS),
}


def class_names(dataset: str, num_classes: int) -> list[str]:
    """The names of classes 0..K-1 of dataset `dataset`: its own where it has them (Fashion-MNIST), else "0".."K-1"."""
    spec = IDX_SETS.get(dataset.strip())
    names = spec.class_names if spec is not None else None
    if names is not None and len(names) == num_classes:
        return list(names)
    return [str(k) for k in range(num_classes)]


@dataclass
class Split:
    """One split's host arrays: x (N, *input_shape) float32, y (N,) int64 / (N, 1) float32 / None."""

    x: np.ndarray
    y: np.ndarray | None

    def __len__(self) -> int:
        return int(self.x.shape[0])


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


def _idx_file(folder: Path, gz_name: str) -> Path | None:
    """A file in `folder` named like MNIST's (also the dotted 'train-images.idx3-ubyte')."""
    raw = gz_name[:-3]
    dotted = raw.replace("-idx", ".idx")
    for name in (gz_name, raw, dotted + ".gz", dotted):
        if (folder / name).is_file():
            return folder / name
    return None


def _idx_files(folder: Path) -> dict[str, Path | None]:
    """The IDX files of an idx:DIR dataset by role (the test pair may be absent); DataError if unusable."""
    if not folder.is_dir():
        raise DataError(f"idx:{folder}: no such folder")
    f = {role: _idx_file(folder, name) for role, name in MNIST_FILES.items()}
    if f["train_images"] is None or f["train_labels"] is None:
        raise DataError(
            f"{folder}: expected {MNIST_FILES['train_images']} and {MNIST_FILES['train_labels']} "
            "(.gz or decompressed; t10k-* test files optional) in this folder"
        )
    if (f["test_images"] is None) != (f["test_labels"] is None):
        raise DataError(f"{folder}: found only one of the two t10k-* test files; need both or none")
    return f


def _load_idx(folder: Path) -> _Raw:
    f = _idx_files(folder)
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


def _parse(name: Any, options: dict[str, Any]) -> tuple[str, str]:
    """(kind, argument) of a dataset name such as "csv:train.csv"; an unknown form or option is an error."""
    if not isinstance(name, str):
        raise DataError(f"dataset name must be a string, got {type(name).__name__}")
    kind, sep, arg = name.strip().partition(":")
    kind = kind.lower()
    if kind not in _OPTIONS or bool(sep) != (kind in ("idx", "csv")) or (sep and not arg):
        raise DataError(f"unknown dataset {name!r}; expected one of: {', '.join(DATASET_FORMS)}")
    unknown = sorted(set(options) - set(_OPTIONS[kind]))
    if unknown:
        valid = ", ".join(_OPTIONS[kind]) or "none"
        raise ConfigError(f"dataset {kind}: unknown option(s) {', '.join(unknown)}; valid: {valid}")
    return kind, arg


def _data_dir(data_dir: Any, kind: str) -> Path | None:
    """An explicit data folder, checked: never a file, and it must exist unless MNIST is downloaded into it."""
    if data_dir is None:
        return None
    d = data_folder(data_dir)
    if kind not in IDX_SETS and not d.is_dir():
        raise DataError(f"data_dir {d}: no such folder")
    return d


def _read(name: str, data_dir: Path | None, seed: int, options: dict[str, Any]) -> tuple[str, _Raw]:
    kind, arg = _parse(name, options)
    data_dir = _data_dir(data_dir, kind)
    if kind in IDX_SETS:
        return kind, _load_mnist(data_dir, options, IDX_SETS[kind])
    if kind == "sine":
        return "sine", _load_sine(seed, options)
    path = _resolve(arg, data_dir)
    return name.strip(), _load_idx(path) if kind == "idx" else _load_csv(path)


def _resolve(arg: str, data_dir: Path | None) -> Path:
    """A relative path as given when it exists, else under data_dir if one is given, else under $XNET_DATA_DIR."""
    p = Path(arg).expanduser()
    if p.is_absolute() or p.exists():
        return p
    if data_dir is not None:  # an explicit data folder is the only other place looked in
        return data_dir / p
    env = os.environ.get(DATA_DIR_ENV)
    if env and (Path(env).expanduser() / p).exists():
        return Path(env).expanduser() / p
    return p


def _check_readable(path: Path) -> None:
    """DataError unless `path` is a file this process can open."""
    try:
        with open(path, "rb") as f:
            f.read(1)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: a folder, not a file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def check_dataset(name: str, data_dir: str | os.PathLike | None = None, **options: Any) -> str:
    """Check cheaply that `name` can be loaded, without reading it; returns where its data is.

    The name and options must be known, an explicit data_dir a folder, the CSV or IDX files
    present and readable; MNIST is located and md5-verified (downloaded if absent and allowed).
    """
    kind, arg = _parse(name, options)
    folder = _data_dir(data_dir, kind)
    if kind in IDX_SETS:
        return locate_mnist(folder, spec=IDX_SETS[kind], **options)[1]
    if kind == "sine":
        return "sine (generated)"
    path = _resolve(arg, folder)
    files = [path] if kind == "csv" else [p for p in _idx_files(path).values() if p is not None]
    for p in files:
        _check_readable(p)
    return str(path)


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

    Images become float32 (N, C, H, W), or (N, C*H*W) with flatten=True; labels int64 (N,);
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
        trx, tr_y = trx[:limit], None if tr_y is None else tr_y[:limit]
        if tex is not None:
            tex, te_y = tex[:n_test], None if te_y is None else te_y[:n_test]
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
        xs = norm.apply(x, idx).reshape(-1, *shape)
        ys = None if y is None else (y if idx is None else y[idx])
        return Split(xs, ys)

    train = prepared(trx, tr_y, tr_idx)
    val = None if val_idx is None else prepared(trx, tr_y, val_idx)
    test = None if tex is None else prepared(tex, te_y, None)
    return Dataset(dname, train, val, test, raw.num_classes, shape, raw.task, source, norm)
