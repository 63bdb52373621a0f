"""Checkpoints: one .npz with arrays and a JSON header, written atomically, device-independent."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from xnet.atomic import atomic_write_bytes
from xnet.errors import XnetError

FORMAT = "xnet-checkpoint-1"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an .npz is a zip archive (the second: an empty one)
_NPY_MAGIC = b"\x93NUMPY"


class CheckpointError(XnetError, KeyError):
    """A checkpoint lacks something xnet needs; a KeyError too, so `except KeyError` still works."""

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError would quote the message


class CheckpointState(dict):
    """A checkpoint's nested dict: a missing key raises CheckpointError naming the file and the key."""

    def __init__(self, items: dict[str, Any], path: Path, where: str) -> None:
        super().__init__(items)
        self._path, self._where = path, where

    def __missing__(self, key: str) -> Any:
        raise unusable(self._path, f"no '{self._where}{key}'")


def plain(obj: Any) -> Any:
    """The same nested data with every CheckpointState a plain dict.

    What leaves the checkpoint as a value (a run's config) must be plain: dataclasses.asdict and
    copy.deepcopy rebuild a dict by calling its type with the items alone, which CheckpointState refuses.
    """
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    return obj


def unusable(path: Path, problem: str) -> CheckpointError:
    """The one error for a checkpoint that xnet wrote once but cannot use now."""
    return CheckpointError(
        f"{path}: not a usable xnet checkpoint ({problem}; damaged, edited or written by an incompatible version)"
    )


def _split_arrays(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """Replace every ndarray inside nested dicts/lists with a reference, collecting the arrays."""
    if isinstance(obj, np.ndarray):
        arrays[prefix] = obj
        return {"__array__": prefix}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {str(k): _split_arrays(v, f"{prefix}/{k}", arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split_arrays(v, f"{prefix}/{i}", arrays) for i, v in enumerate(obj)]
    return obj


def _join_arrays(obj: Any, arrays: dict[str, np.ndarray], path: Path, where: str = "") -> Any:
    """Inverse of `_split_arrays`; dicts become CheckpointState so missing keys name the file."""
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            name = obj["__array__"]
            if not isinstance(name, str) or name not in arrays:
                raise unusable(path, f"the header names array {name!r}, which the file does not hold")
            return np.asarray(arrays[name])
        items = {k: _join_arrays(v, arrays, path, f"{where}{k}/") for k, v in obj.items()}
        return CheckpointState(items, path, where)
    if isinstance(obj, list):
        return [_join_arrays(v, arrays, path, f"{where}{i}/") for i, v in enumerate(obj)]
    return obj


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Save a nested dict of host arrays and JSON-able values as one .npz, atomically."""
    arrays: dict[str, np.ndarray] = {}
    header = _split_arrays(state, "s", arrays)
    header = {"format": FORMAT, "state": header}
    buf = io.BytesIO()
    np.savez(buf, __header__=np.array(json.dumps(header)), **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _check_kind(path: Path) -> None:
    """Refuse files that are not zip archives before NumPy sees them (it would offer to unpickle them)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as e:
        raise XnetError(f"{path}: cannot read checkpoint ({e.strerror or e})") from None
    if magic.startswith(_ZIP_MAGIC):
        return
    if not magic:
        what = "the file is empty"
    elif magic == _NPY_MAGIC:
        what = "a single NumPy .npy array, not an .npz archive"
    else:
        what = "not an .npz archive"
    raise XnetError(f"{path}: not an xnet checkpoint ({what})")


def _read(path: Path) -> tuple[Any, dict[str, np.ndarray]]:
    """(parsed JSON header, arrays by name) of an .npz archive."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "__header__" not in z.files:
                raise XnetError(f"{path}: not an xnet checkpoint (an .npz archive without an xnet header)")
            text = z["__header__"]
            arrays = {k: z[k] for k in z.files if k != "__header__"}
    except XnetError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise XnetError(f"{path}: damaged checkpoint, cannot read it ({e})") from None
    if text.dtype.kind != "U" or text.ndim != 0:
        raise XnetError(f"{path}: not an xnet checkpoint (its header is not text)")
    try:
        header = json.loads(str(text))
    except ValueError as e:
        raise XnetError(f"{path}: not an xnet checkpoint (its header is not JSON: {e})") from None
    return header, arrays


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load what `save_checkpoint` wrote; a missing, foreign or damaged file raises XnetError.

    The dicts returned raise `CheckpointError` (an XnetError naming the file) for a missing key.
    """
    path = Path(path)
    if not path.is_file():
        raise XnetError(f"no checkpoint at {path}")
    _check_kind(path)
    header, arrays = _read(path)
    if not isinstance(header, dict):
        raise XnetError(f"{path}: not an xnet checkpoint (its header is a JSON {type(header).__name__}, not an object)")
    if header.get("format") != FORMAT:
        raise XnetError(f"{path}: not an xnet checkpoint (format {header.get('format')!r}, expected {FORMAT!r})")
    if "state" not in header:
        raise unusable(path, "the header has no 'state'")
    if not isinstance(header["state"], dict):
        raise unusable(path, f"its state is a JSON {type(header['state']).__name__}, not an object")
    return _join_arrays(header["state"], arrays, path)
