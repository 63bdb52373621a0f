"""CSV image data in the Kaggle digit-recognizer layout: `label,pixel0,...,pixelK` rows.

A header line is expected; without a `label` first column (Kaggle's test.csv) the file has no
labels and serves prediction. A headerless file is read as label-first rows. Parsing is
NumPy's C loadtxt (about 0.7 s for 42000 x 785); only when that or the range check fails is
the file read again line by line, to name the first bad line.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np

from xnet.errors import DataError


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _read_header(path: Path) -> tuple[list[str] | None, int]:
    """(header field names or None, number of columns) from the first line."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    fields = [s.strip() for s in first.strip().split(",")]
    if not first.strip():
        raise DataError(f"{path}: empty file (expected a header such as label,pixel0,...)")
    if all(_is_number(s) for s in fields):
        return None, len(fields)
    return fields, len(fields)


def _find_bad_line(path: Path, ncols: int, labelled: bool, skip: int) -> DataError | None:
    """The error for the first malformed line, read slowly line by line (None if none found)."""
    want = f"{ncols} values" + (f" (label + {ncols - 1} pixels)" if labelled else " (pixels)")
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            if lineno <= skip or not line.strip():
                continue
            fields = line.strip().split(",")
            if len(fields) != ncols:
                return DataError(f"{path}: line {lineno}: expected {want}, got {len(fields)}")
            for col, s in enumerate(fields):
                what = "label" if labelled and col == 0 else f"pixel {col - labelled}"
                try:
                    v = int(s)
                except ValueError:
                    return DataError(
                        f"{path}: line {lineno}: {what} is {s.strip()!r}, not an integer"
                    )
                if what == "label" and v < 0:
                    return DataError(f"{path}: line {lineno}: negative label {v}")
                if what != "label" and not 0 <= v <= 255:
                    return DataError(f"{path}: line {lineno}: {what} is {v}, outside 0..255")
    return None


def read_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a digits CSV: (pixels (N, K) uint8, labels (N,) int64 or None when unlabelled)."""
    p = Path(path)
    header, ncols = _read_header(p)
    labelled = header is None or header[0].lower() == "label"
    if header is not None and any(h.lower() == "label" for h in header[1:]):
        raise DataError(f"{p}: line 1: the label column must come first, header is {header[:3]}...")
    if labelled and ncols < 2:
        raise DataError(f"{p}: line 1: a label column but no pixel columns")
    skip = 0 if header is None else 1
    try:
        with warnings.catch_warnings():
            # NumPy parses "1.5" into an int column with only a DeprecationWarning: refuse it
            warnings.simplefilter("error", DeprecationWarning)
            data = np.loadtxt(
                p, dtype=np.int32, delimiter=",", skiprows=skip, comments=None, ndmin=2,
                encoding="utf-8",
            )
        ok = data.shape[1] == ncols or data.shape[0] == 0
    except (ValueError, DeprecationWarning) as e:
        data, ok, fast_error = None, False, str(e)
    if ok and data is not None:
        pix = data[:, 1:] if labelled else data
        ok = bool(pix.size == 0 or (pix.min() >= 0 and pix.max() <= 255))
        ok = ok and not (labelled and data.shape[0] and data[:, 0].min() < 0)
        fast_error = "a value is out of range"
    if not ok:
        err = _find_bad_line(p, ncols, labelled, skip)
        raise err or DataError(f"{p}: malformed CSV ({fast_error})")
    if data.shape[0] == 0:
        raise DataError(f"{p}: no data rows after the header")
    if labelled:
        return np.ascontiguousarray(data[:, 1:], dtype=np.uint8), data[:, 0].astype(np.int64)
    return data.astype(np.uint8), None


def image_shape(num_pixels: int) -> tuple[int, ...]:
    """(1, S, S) when `num_pixels` is a square S*S (784 -> (1, 28, 28)), else (num_pixels,)."""
    side = math.isqrt(num_pixels)
    return (1, side, side) if side * side == num_pixels and side > 1 else (num_pixels,)
