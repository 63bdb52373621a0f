"""IDX files (the MNIST format), gzip-compressed or raw: read, check, write.

An IDX file is a 4-byte magic number (two zero bytes, an element-type byte, the number of
dimensions), one big-endian uint32 per dimension, then the elements in C order, big-endian.
Every problem raises DataError naming the file and what is wrong.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from xnet.errors import DataError

# element-type byte -> (name, big-endian dtype), from the IDX specification
IDX_TYPES: dict[int, tuple[str, str]] = {
    0x08: ("uint8", "u1"),
    0x09: ("int8", "i1"),
    0x0B: ("int16", ">i2"),
    0x0C: ("int32", ">i4"),
    0x0D: ("float32", ">f4"),
    0x0E: ("float64", ">f8"),
}
_CODE_OF = {np.dtype(name): code for code, (name, _) in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _types_list() -> str:
    return ", ".join(f"0x{c:02X} {n}" for c, (n, _) in IDX_TYPES.items())


def gunzip(data: bytes, name: str) -> bytes:
    """The decompressed bytes of a gzip file's content (one bytes object, members joined)."""
    members = []
    while data:
        do = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip header + trailer check by zlib
        try:
            members.append(do.decompress(data))
        except zlib.error as e:
            raise DataError(f"{name}: corrupt gzip data ({e})") from None
        if not do.eof:
            raise DataError(f"{name}: truncated gzip file (the compressed stream ends early)")
        data = do.unused_data.lstrip(b"\x00")
        if data and not data.startswith(_GZIP_MAGIC):
            raise DataError(f"{name}: corrupt gzip data (trailing garbage after the stream)")
    return members[0] if len(members) == 1 else b"".join(members)


def parse_idx(data: bytes, name: str) -> np.ndarray:
    """Decode an IDX file's (decompressed) bytes into an array of the header's shape.

    uint8/int8 data is a read-only view of `data` (no copy); wider types are converted to
    native byte order (one copy).
    """
    if len(data) < 4:
        raise DataError(f"{name}: truncated: {len(data)} bytes, too short for an IDX header")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    if zero0 != 0 or zero1 != 0:
        hint = " (gzip data inside a file that is not .gz?)" if data[:2] == _GZIP_MAGIC else ""
        raise DataError(
            f"{name}: not an IDX file: magic number 0x{magic:08X}, expected two zero bytes, "
            f"a type byte and the number of dimensions (0x00000801, 0x00000803, ...){hint}"
        )
    if code not in IDX_TYPES:
        raise DataError(
            f"{name}: unknown IDX element type 0x{code:02X} in magic number 0x{magic:08X}; "
            f"known types: {_types_list()}"
        )
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions (magic 0x{magic:08X})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{name}: truncated: header declares {ndim} dimensions ({header} header bytes), "
            f"file has {len(data)} bytes"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    type_name, dt = IDX_TYPES[code]
    itemsize = np.dtype(dt).itemsize
    expected = int(np.prod(dims, dtype=np.int64)) * itemsize
    have = len(data) - header
    if have != expected:
        what = "truncated" if have < expected else "size mismatch (extra bytes after the data)"
        shape = "x".join(str(d) for d in dims)
        unit = "" if itemsize == 1 else f" ({type_name}, {itemsize} bytes each)"
        raise DataError(
            f"{name}: {what}: header says {shape}{unit} = {expected} bytes of data, "
            f"file has {have}"
        )
    arr = np.frombuffer(data, dtype=dt, offset=header).reshape(dims)
    if itemsize > 1:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file, gzip-compressed (detected by content) or raw, into an array."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{p}: no such file") from None
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror or e})") from None
    if data[:2] == _GZIP_MAGIC:
        data = gunzip(data, str(p))
    return parse_idx(data, str(p))


def check_pair(images: np.ndarray, labels: np.ndarray, images_name: str, labels_name: str) -> None:
    """Check that an images array and a labels array describe the same samples."""
    if labels.ndim != 1:
        raise DataError(f"{labels_name}: labels must be 1-D, header says shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{labels_name}: labels must be integers, file holds {labels.dtype}")
    if images.ndim < 2:
        raise DataError(
            f"{images_name}: images need at least 2 dimensions (count, ...), got {images.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_name} / {labels_name}: count mismatch: {images.shape[0]} images but "
            f"{labels.shape[0]} labels"
        )
    if labels.size and labels.min() < 0:
        raise DataError(f"{labels_name}: negative label {int(labels.min())}")


def read_idx_pair(
    images_path: str | os.PathLike, labels_path: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file and its labels file, checking they have the same count.

    Returns (images (N, ...) as stored, labels (N,) int64).
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    check_pair(images, labels, str(images_path), str(labels_path))
    return images, labels.astype(np.int64)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write `array` as an IDX file (gzip-compressed when the name ends in .gz)."""
    a = np.asarray(array)
    if a.dtype not in _CODE_OF:
        raise ValueError(f"write_idx: dtype {a.dtype} has no IDX type; known: {_types_list()}")
    code = _CODE_OF[a.dtype]
    header = bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
    body = np.ascontiguousarray(a, dtype=np.dtype(IDX_TYPES[code][1])).tobytes()
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "wb") as f:
        f.write(header + body)
