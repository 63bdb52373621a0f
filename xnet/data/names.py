"""Where a dataset is: its name parsed, its files found, and `check_dataset` (all without reading the data)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from xnet.data.fashion_mnist import FASHION_MNIST
from xnet.data.mnist import DATA_DIR_ENV, MNIST, MNIST_FILES, IdxSet, data_folder, locate_mnist
from xnet.data.synthetic import SINE_DEFAULTS
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


def idx_file(folder: Path, gz_name: str) -> Path | None:
    """A file in `folder` named like MNIST's (also the dotted 'train-images.idx3-ubyte')."""
    raw = gz_name[:-3]
    dotted = raw.replace("-idx", ".idx")
    for name in (gz_name, raw, dotted + ".gz", dotted):
        if (folder / name).is_file():
            return folder / name
    return None


def idx_files(folder: Path) -> dict[str, Path | None]:
    """The IDX files of an idx:DIR dataset by role (the test pair may be absent); DataError if unusable."""
    if not folder.is_dir():
        raise DataError(f"idx:{folder}: no such folder")
    f = {role: idx_file(folder, name) for role, name in MNIST_FILES.items()}
    if f["train_images"] is None or f["train_labels"] is None:
        raise DataError(
            f"{folder}: expected {MNIST_FILES['train_images']} and {MNIST_FILES['train_labels']} "
            "(.gz or decompressed; t10k-* test files optional) in this folder"
        )
    if (f["test_images"] is None) != (f["test_labels"] is None):
        raise DataError(f"{folder}: found only one of the two t10k-* test files; need both or none")
    return f


def parse_name(name: Any, options: dict[str, Any]) -> tuple[str, str]:
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


def data_dir_of(data_dir: Any, kind: str) -> Path | None:
    """An explicit data folder, checked: never a file, and it must exist unless MNIST is downloaded into it."""
    if data_dir is None:
        return None
    d = data_folder(data_dir)
    if kind not in IDX_SETS and not d.is_dir():
        raise DataError(f"data_dir {d}: no such folder")
    return d


def resolve_path(arg: str, data_dir: Path | None) -> Path:
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


def check_readable(path: Path) -> None:
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
    kind, arg = parse_name(name, options)
    folder = data_dir_of(data_dir, kind)
    if kind in IDX_SETS:
        return locate_mnist(folder, spec=IDX_SETS[kind], **options)[1]
    if kind == "sine":
        return "sine (generated)"
    path = resolve_path(arg, folder)
    files = [path] if kind == "csv" else [p for p in idx_files(path).values() if p is not None]
    for p in files:
        check_readable(p)
    return str(path)
