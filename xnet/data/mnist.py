"""MNIST and the datasets stored as it is (Fashion-MNIST): find the four files, verify their md5, download them.

Each is an `IdxSet`: its file names, official md5s, mirrors and folder name; `locate_mnist(spec=...)`
serves any of them (the layout below, with its own folder name in place of mnist/).

An explicit data_dir is the one place looked in (itself, or its mnist/) and where a download
goes: it never falls back to another folder. Without one: $XNET_DATA_DIR/mnist, then the user
cache ($XDG_CACHE_HOME/xnet/mnist, default ~/.cache/xnet/mnist), which downloads fill. md5 of
all four files takes about 20 ms, so it is checked on every load rather than memoised.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xnet.data.download import DownloadFailed, download_files, mirror_list
from xnet.data.idx import check_pair, read_idx
from xnet.errors import DataError

# role -> file name of the original (compressed) file
MNIST_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
# the official md5 of each .gz, and of its decompressed content (for folders holding raw files)
MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# public copies of the original files (file URL = mirror + file name)
DEFAULT_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MIRRORS_ENV = "XNET_MNIST_MIRRORS"
DATA_DIR_ENV = "XNET_DATA_DIR"


@dataclass(frozen=True)
class IdxSet:
    """A dataset of four MNIST-layout IDX files: where it is cached, what its files hash to, where to fetch them."""

    name: str  # its folder under $XNET_DATA_DIR and the cache: "mnist"
    title: str  # how messages name it: "MNIST"
    md5: dict[str, str]  # official md5 of each .gz and of its decompressed content
    mirrors: tuple[str, ...]
    mirrors_env: str
    files: tuple[tuple[str, str], ...] = tuple(MNIST_FILES.items())  # (role, .gz name)
    class_names: tuple[str, ...] | None = None  # label k's name; None: the labels are their own names ("0".."9")


MNIST = IdxSet("mnist", "MNIST", MNIST_MD5, DEFAULT_MIRRORS, MIRRORS_ENV)


def cache_root() -> Path:
    """xnet's user cache folder: $XDG_CACHE_HOME/xnet, default ~/.cache/xnet."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "xnet"


def mnist_cache_dir(spec: IdxSet = MNIST) -> Path:
    """Where downloaded MNIST (or `spec`'s) files live."""
    return cache_root() / spec.name


def md5_of(path: Path) -> str:
    """Hex md5 of a file's bytes."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def find_file(folder: Path, gz_name: str) -> Path | None:
    """`folder`'s copy of one MNIST file (.gz or decompressed), if present."""
    for name in (gz_name, gz_name[:-3]):
        if (folder / name).is_file():
            return folder / name
    return None


def find_files(folder: Path, spec: IdxSet = MNIST) -> dict[str, Path] | None:
    """The four files in `folder` (each .gz or decompressed), or None if any is missing."""
    found = {role: find_file(folder, gz) for role, gz in spec.files}
    return None if None in found.values() else found  # type: ignore[return-value]


def _content_md5(path: Path) -> str | None:
    """Hex md5 of a .gz file's decompressed bytes, or None if it does not decompress."""
    h, unzip = hashlib.md5(), zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(unzip.decompress(chunk))
        h.update(unzip.flush())
    except zlib.error:
        return None
    return h.hexdigest()


def verify(path: Path, spec: IdxSet = MNIST) -> None:
    """Raise DataError unless `path` has the official md5 of the file of its name.

    A .gz whose own md5 differs passes when its content is the original's (a recompressed copy,
    as Debian's dataset packages ship).
    """
    expected = spec.md5[path.name]
    got = md5_of(path)
    if got == expected:
        return
    if path.suffix == ".gz" and _content_md5(path) == spec.md5[path.name[:-3]]:
        return
    raise DataError(
        f"{path}: md5 mismatch: got {got}, expected {expected} (the official {spec.title} file); "
        "the file is corrupt or not the original: delete or replace it"
    )


def data_folder(data_dir: str | os.PathLike) -> Path:
    """An explicitly given data folder as a Path; DataError if something other than a folder is there."""
    d = Path(data_dir).expanduser()
    if d.exists() and not d.is_dir():
        raise DataError(f"data_dir {d}: not a folder (it is a file)")
    return d


def candidate_dirs(data_dir: str | os.PathLike | None, spec: IdxSet = MNIST) -> list[Path]:
    """Folders searched, in order: an explicit data_dir and its mnist/ (spec.name/) and nothing else;
    without one, $XNET_DATA_DIR/mnist and then the cache folder."""
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        return [d, d / spec.name]
    out: list[Path] = []
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        out.append(Path(env).expanduser() / spec.name)
    out.append(mnist_cache_dir(spec))
    return out


def _missing(folder: Path, spec: IdxSet) -> list[str]:
    """The file names `folder` lacks (all four when it does not exist)."""
    return [n for _, n in spec.files if find_file(folder, n) is None]


def _found(folder: Path, spec: IdxSet) -> tuple[dict[str, Path], str] | None:
    """`folder`'s verified files and their description, or None if any is missing."""
    files = find_files(folder, spec)
    if files is None:
        return None
    for p in files.values():
        verify(p, spec)
    return files, f"{spec.name} from {folder} (md5 verified)"


def _incomplete(folders: list[Path], spec: IdxSet) -> str:
    """' (F holds only 2 of the 4 files; missing: A, B)' for folders holding some but not all, else ''."""
    notes, n = [], len(spec.files)
    for folder in folders:
        missing = _missing(folder, spec)
        if 0 < len(missing) < n:
            notes.append(f"{folder} holds only {n - len(missing)} of the {n} files; missing: {', '.join(missing)}")
    return f" ({'; '.join(notes)})" if notes else ""


def _download_into(
    target: Path,
    searched: list[Path],
    where: str,
    advice: str,
    download: bool,
    mirrors: list[str] | str | None,
    timeout: float,
    progress: bool | None,
    spec: IdxSet = MNIST,
) -> tuple[dict[str, Path], str]:
    """Download the files `target` lacks, or raise DataError naming `where` was searched and what to do."""
    where += _incomplete(searched, spec)
    urls = mirror_list(mirrors, spec.mirrors, spec.mirrors_env)
    if not download or not urls:
        why = "downloading is off" if not download else f"no mirrors (${spec.mirrors_env} is empty)"
        raise DataError(f"{spec.title} not found {where} and {why}: {advice}")
    if progress is None:
        progress = sys.stderr.isatty()
    missing = {n: spec.md5[n] for n in _missing(target, spec)}
    # folders made for a download that then fails are removed again: a failure leaves nothing behind
    created = [p for p in (target, *target.parents) if not p.exists()]
    try:
        used = download_files(missing, target, urls, timeout=timeout, progress=progress, what=spec.title)
    except DownloadFailed as e:
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        raise DataError(
            f"{spec.title} not found {where} and could not be downloaded into {target} ({'; '.join(e.reasons)}); "
            f"without network, {advice}"
        ) from None
    files = find_files(target, spec)
    assert files is not None  # download_files raised if any file is still missing
    for p in files.values():
        verify(p, spec)  # the files that were there already are checked too
    via = ", ".join(sorted(set(used.values())))
    return files, f"{spec.name} downloaded from {via} to {target} (md5 verified)"


def _locate_in(data_dir: str | os.PathLike, spec: IdxSet, **fetch: Any) -> tuple[dict[str, Path], str]:
    """The files from an explicit data folder (itself or its mnist/), downloaded into it if absent; never elsewhere."""
    d = data_folder(data_dir)
    sub = d / spec.name
    folders = [d, sub]
    for folder in folders:
        found = _found(folder, spec)
        if found is not None:
            return found
    # a partial set is completed where it is; otherwise the files go into mnist/ if there is one, else d
    partial = [f for f in folders if len(_missing(f, spec)) < len(spec.files)]
    target = partial[0] if partial else (sub if sub.is_dir() else d)
    where = f"in {d} (no such folder)" if not d.exists() else f"in {d} or {sub}"
    advice = f"put {', '.join(_missing(target, spec))} (the original {spec.title} files) into {target}"
    return _download_into(target, folders, where, advice, spec=spec, **fetch)


def locate_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    mirrors: list[str] | str | None = None,
    timeout: float = 30.0,
    progress: bool | None = None,
    spec: IdxSet = MNIST,
) -> tuple[dict[str, Path], str]:
    """Find (or download) the verified MNIST (or `spec`'s) files: ({role: path}, description of the source).

    An explicit data_dir is the only place looked in (itself or its mnist/), and the download target;
    without one, $XNET_DATA_DIR/mnist, then the cache (downloads go there); spec.name replaces mnist.
    """
    fetch = {"download": download, "mirrors": mirrors, "timeout": timeout, "progress": progress}
    if data_dir is not None:
        return _locate_in(data_dir, spec, **fetch)
    cache = mnist_cache_dir(spec)
    for folder in candidate_dirs(None, spec)[:-1]:
        found = _found(folder, spec)
        if found is not None:
            return found
    # the cache is ours: a damaged file there is replaced by a fresh download, not reported
    for _, name in spec.files:
        p = find_file(cache, name)
        if p is not None and md5_of(p) != spec.md5[p.name]:
            p.unlink(missing_ok=True)
    files = find_files(cache, spec)
    if files is not None:
        return files, f"{spec.name} from {cache} (md5 verified)"
    advice = (
        f"put {', '.join(_missing(cache, spec))} (the original {spec.title} files) into {cache}, or set "
        f"${DATA_DIR_ENV} to a folder holding {spec.name}/ with them"
    )
    folders = candidate_dirs(None, spec)
    where = f"in {', '.join(str(f) for f in folders)}"
    return _download_into(cache, folders, where, advice, spec=spec, **fetch)


def read_mnist(files: dict[str, Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four arrays: train images (60000, 28, 28) uint8, labels (60000,) int64, test likewise."""
    out = []
    for split in ("train", "test"):
        images, labels = read_idx(files[f"{split}_images"]), read_idx(files[f"{split}_labels"])
        check_pair(images, labels, str(files[f"{split}_images"]), str(files[f"{split}_labels"]))
        out += [images, labels.astype(np.int64)]
    return out[0], out[1], out[2], out[3]
