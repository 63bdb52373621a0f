"""CSV image data in the Kaggle digit-recognizer layout: `label,pixel0,...,pixelK` rows.

A header line is expected; without a `label` first column (Kaggle's test.csv) the file has no
labels and serves prediction. A headerless file is read as label-first rows. Parsing is
NumPy's C loadtxt (about 0.9 s for Kaggle's 42000 x 785). Only when that or the range check
fails is the file inspected again to name the first bad line: a quick pass with C-speed bytes
methods finds the suspect lines (odd characters, wrong comma count, out-of-range values) and
only those are parsed in Python; a full line-by-line parse is the last resort.
"""

from __future__ import annotations

import codecs
import math
import os
import warnings
from pathlib import Path

import numpy as np

from xnet.errors import DataError

_ALLOWED = b"0123456789, \t\r\n"  # the bytes a well-formed row may hold


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _read_header(path: Path) -> tuple[list[str] | None, int]:
    """(header field names or None, number of columns) from the first line."""
    try:
        # utf-8-sig drops the byte-order mark Excel's "CSV UTF-8" puts first, which would hide the label column
        with open(path, encoding="utf-8-sig", errors="replace") as f:
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


def _short(text: str, limit: int = 60) -> str:
    """repr of `text`, cut to about `limit` characters so a whole long line is never echoed."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def _separator_hint(field: str) -> str:
    """A hint when a field holds another delimiter: the file is probably not comma-separated."""
    for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
        if sep in field:
            return f" (the values seem separated by {name}; xnet reads comma-separated files)"
    return ""


def _line_error(row: str, ncols: int, labelled: bool) -> str | None:
    """What is wrong with one data line, or None."""
    fields = row.split(",")
    if len(fields) != ncols:
        want = f"{ncols} values" + (f" (label + {ncols - 1} pixels)" if labelled else " (pixels)")
        return f"expected {want}, got {len(fields)}"
    for col, s in enumerate(fields):
        what = "label" if labelled and col == 0 else f"pixel {col - labelled}"
        try:
            v = int(s)
        except ValueError:
            return f"{what} is {_short(s.strip())}, not an integer" + _separator_hint(s)
        if what == "label" and v < 0:
            return f"negative label {v}"
        if what != "label" and not 0 <= v <= 255:
            return f"{what} is {v}, outside 0..255"
    return None


def _suspect_lines(
    lines: list[bytes], ncols: int, skip: int, bad_rows: np.ndarray | None
) -> list[int]:
    """0-based indices of lines that may be malformed, each found by C-speed bytes methods.

    Lines with a byte no number row has or a comma count other than ncols - 1, and (from
    bad_rows, data-row indices of a parsed array) the lines of out-of-range values.
    """
    suspect, data_lines = set(), []
    for i, line in enumerate(lines):
        if i < skip or not line.strip():
            continue
        data_lines.append(i)
        if line.count(b",") != ncols - 1 or line.translate(None, _ALLOWED):
            suspect.add(i)
    if bad_rows is not None:  # loadtxt skips blank lines: data row r is data_lines[r]
        suspect.update(data_lines[r] for r in bad_rows.tolist() if r < len(data_lines))
    return sorted(suspect)


def _find_bad_line(
    path: Path, ncols: int, labelled: bool, skip: int, bad_rows: np.ndarray | None = None
) -> DataError | None:
    """The error naming the first malformed line (None if every line is fine)."""
    lines = path.read_bytes().removeprefix(codecs.BOM_UTF8).split(b"\n")
    suspects = _suspect_lines(lines, ncols, skip, bad_rows)
    # if nothing looks suspicious (e.g. a number too large to parse), every line is checked
    for i in suspects or range(skip, len(lines)):
        text = lines[i].decode("utf-8", "replace").rstrip("\r")
        problem = _line_error(text, ncols, labelled) if text.strip() else None
        if problem:
            return DataError(f"{path}: line {i + 1}: {problem}")
    return None


def read_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a digits CSV: (pixels (N, K) uint8, labels (N,) int64 or None when unlabelled)."""
    p = Path(path)
    header, ncols = _read_header(p)
    labelled = header is None or header[0].lower() == "label"
    if header is not None and any(h.lower() == "label" for h in header[1:]):
        raise DataError(f"{p}: line 1: the label column must come first, header starts {_short(','.join(header[:3]))}")
    if labelled and ncols < 2:
        raise DataError(f"{p}: line 1: a label column but no pixel columns")
    skip = 0 if header is None else 1
    data, bad_rows, fast_error = None, None, "a value is out of range"
    try:
        with warnings.catch_warnings():
            # NumPy parses "1.5" into an int column with only a DeprecationWarning: refuse it
            warnings.simplefilter("error", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)  # "no data": reported below
            data = np.loadtxt(
                p, dtype=np.int32, delimiter=",", skiprows=skip, comments=None, ndmin=2,
                encoding="utf-8-sig",
            )
    except (ValueError, DeprecationWarning) as e:
        fast_error = str(e)
    if data is not None and data.shape[0]:
        if data.shape[1] != ncols:
            bad_rows = np.arange(1)  # every row disagrees with the header: the first is named
        else:
            pix = data[:, 1:] if labelled else data
            wrong = ((pix < 0) | (pix > 255)).any(axis=1)
            if labelled:
                wrong |= data[:, 0] < 0
            bad_rows = np.flatnonzero(wrong) if wrong.any() else None
    if data is None or bad_rows is not None:
        err = _find_bad_line(p, ncols, labelled, skip, bad_rows)
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


def read_pixels(path: str | os.PathLike, num_pixels: int) -> np.ndarray:
    """The pixels (N, num_pixels) uint8 of a digits CSV, for prediction; a label column is dropped."""
    pixels, _ = read_csv(path)
    if pixels.shape[1] == num_pixels:
        return pixels
    header, ncols = _read_header(Path(path))
    if header is None:
        raise DataError(
            f"{path}: no header line, so the first of its {ncols} columns was taken as a label and the other "
            f"{ncols - 1} do not form an image of the model's {num_pixels} pixels"
            + (" (add a header pixel0,...: then every column is a pixel)" if ncols == num_pixels else "")
        )
    raise DataError(f"{path}: rows hold {pixels.shape[1]} pixels, the model takes {num_pixels}")
