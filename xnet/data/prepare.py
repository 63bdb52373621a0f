"""Preparation on the host: normalisation, validation split, one-hot, flattening.

Raw pixels stay uint8 until the one conversion to float32, done in row chunks straight into
the result: reading the 60k MNIST training set holds one uint8 copy plus the float32 result,
never a float64 or a second full-size temporary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from xnet.backends import host_stream
from xnet.errors import ConfigError, DataError

NORMALIZE_MODES = ("unit", "centered", "standard", "none")
PIXEL_MODES = ("unit", "centered")  # modes that assume 0..255 pixel values
PIXEL_RANGE = (0.0, 255.0)  # raw pixel values, as MNIST, IDX and CSV images hold them
_CHUNK = 4096  # rows per conversion chunk: small temporaries, still vectorised


@dataclass(frozen=True)
class Normalization:
    """How raw values become inputs: x_prepared = (x_raw - offset) / scale, as float32.

    unit: offset 0, scale 255. centered: offset 127.5, scale 255 (values in [-0.5, 0.5]).
    standard: offset = mean, scale = std of the training split. none: offset 0, scale 1.
    """

    mode: str = "unit"
    offset: float = 0.0
    scale: float = 255.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, for checkpoints and `xnet predict`."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        """Inverse of `to_dict`."""
        try:
            norm = cls(str(d["mode"]), float(d["offset"]), float(d["scale"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"normalization: expected mode, offset and scale, got {d!r}") from e
        if not (math.isfinite(norm.offset) and math.isfinite(norm.scale) and norm.scale != 0):
            raise ConfigError(f"normalization: offset and scale must be finite and scale non-zero, got {d!r}")
        return norm

    def apply(self, raw: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
        """float32 (x - offset) / scale of `raw` (or of its rows `index`), same trailing shape."""
        n = raw.shape[0] if index is None else len(index)
        out = np.empty((n, *raw.shape[1:]), dtype=np.float32)
        offset, scale = np.float32(self.offset), np.float32(self.scale)
        for i in range(0, n, _CHUNK):
            o = out[i : i + _CHUNK]
            o[...] = raw[i : i + _CHUNK] if index is None else raw[index[i : i + _CHUNK]]
            if offset != 0:
                o -= offset
            if scale != 1:
                o /= scale
        return out


def _mean_std(raw: np.ndarray, index: np.ndarray | None) -> tuple[float, float]:
    """Mean and std over every value of `raw` (or of its rows `index`), in float64."""
    n = raw.shape[0] if index is None else len(index)
    if n == 0:
        raise DataError("cannot compute normalisation statistics of an empty training split")
    if raw.dtype == np.uint8:
        # an exact histogram of the 256 values: no float copy of the data at all
        counts = np.zeros(256, dtype=np.int64)
        for i in range(0, n, _CHUNK):
            rows = raw[i : i + _CHUNK] if index is None else raw[index[i : i + _CHUNK]]
            counts += np.bincount(rows.ravel(), minlength=256)
        v = np.arange(256, dtype=np.float64)
        total = counts.sum()
        mean = float((counts * v).sum() / total)
        var = float((counts * (v - mean) ** 2).sum() / total)
        return mean, var**0.5
    s = sq = 0.0
    count = 0
    for i in range(0, n, _CHUNK):
        rows = raw[i : i + _CHUNK] if index is None else raw[index[i : i + _CHUNK]]
        r = rows.astype(np.float64)
        s += float(r.sum())
        sq += float((r * r).sum())
        count += r.size
    mean = s / count
    return mean, max(sq / count - mean * mean, 0.0) ** 0.5


def fit_normalization(mode: str, raw: np.ndarray, index: np.ndarray | None = None) -> Normalization:
    """The Normalization for `mode`; `standard` takes mean/std of `raw` (rows `index`) only."""
    if mode == "unit":
        return Normalization("unit", 0.0, 255.0)
    if mode == "centered":
        return Normalization("centered", 127.5, 255.0)
    if mode == "none":
        return Normalization("none", 0.0, 1.0)
    if mode == "standard":
        mean, std = _mean_std(raw, index)
        return Normalization("standard", mean, std if std > 0 else 1.0)
    raise ConfigError(f"normalize must be one of {', '.join(NORMALIZE_MODES)}; got {mode!r}")


def split_indices(
    n: int, val_split: float | int, seed: int = 0
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(train rows, validation rows), each sorted; (None, None) when val_split is 0.

    val_split is a fraction in [0, 1) of the n rows, or an int count >= 1. The held-out rows
    are a seeded random choice (the "split" random stream): the same seed gives the same split
    every run, on every machine.
    """
    if isinstance(val_split, bool) or not isinstance(val_split, (int, float, np.number)):
        raise ConfigError(f"val_split must be a fraction in [0, 1) or a count, got {val_split!r}")
    if val_split == 0:
        return None, None
    if isinstance(val_split, (int, np.integer)):
        n_val = int(val_split)
    elif 0 < val_split < 1:
        n_val = max(1, round(n * float(val_split)))
    else:
        raise ConfigError(f"val_split must be a fraction in [0, 1) or a count, got {val_split!r}")
    if not 0 < n_val < n:
        raise ConfigError(
            f"val_split={val_split!r} holds out {n_val} of {n} training samples; "
            "at least one must stay for training and one for validation"
        )
    perm = host_stream(seed, "split").permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def one_hot(y: np.ndarray, num_classes: int, dtype: Any = np.float32) -> np.ndarray:
    """(N,) integer labels -> (N, num_classes) one-hot rows."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"one_hot: expected (N,) integer labels, got {y.dtype} {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"one_hot: labels must be in 0..{num_classes - 1}, got {y.min()}..{y.max()}")
    out = np.zeros((y.shape[0], num_classes), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1
    return out


def flatten(x: np.ndarray) -> np.ndarray:
    """(N, ...) -> (N, prod(...)), a view when x is contiguous."""
    return x.reshape(x.shape[0], -1)


def as_normalization(spec: Normalization | dict | str) -> Normalization:
    """A Normalization from itself, its dict form, or a mode name that needs no statistics."""
    if isinstance(spec, Normalization):
        return spec
    if isinstance(spec, dict):
        return Normalization.from_dict(spec)
    if spec == "standard":
        raise ConfigError(
            "normalize='standard' needs the training statistics: pass the Normalization "
            "(or its dict) saved with the model"
        )
    return fit_normalization(spec, np.zeros((0,), np.uint8))


def _sample_forms(input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Shapes one sample may have: the model's own, (H, W) for one channel, and flat (C*H*W,).

    A flat input of a square size S*S (a flattened image) also takes (S, S) and (1, S, S); a
    single input value also takes a bare number, so (N,) is N samples.
    """
    per = int(np.prod(input_shape))
    forms = [input_shape]
    if len(input_shape) == 3 and input_shape[0] == 1:
        forms.append(input_shape[1:])
    side = math.isqrt(per)
    if len(input_shape) == 1 and side > 1 and side * side == per:
        forms += [(side, side), (1, side, side)]
    forms.append((per,))
    if per == 1:
        forms.append(())
    return list(dict.fromkeys(forms))  # unique, in order


def as_samples(raw: np.ndarray, input_shape: tuple[int, ...], what: str = "images") -> np.ndarray:
    """One sample or a batch (N, ...) of any accepted form (see `_sample_forms`) -> (N, *input_shape)."""
    input_shape = tuple(int(s) for s in input_shape)
    forms = _sample_forms(input_shape)
    for form in forms:
        if raw.shape == form:
            return raw.reshape(1, *input_shape)
        if raw.ndim == len(form) + 1 and raw.shape[1:] == form:
            if raw.shape[0] == 0:
                raise DataError(f"{what} of shape {raw.shape}: no samples")
            return raw.reshape(raw.shape[0], *input_shape)
    one = ", ".join(str(f) for f in forms[:-1]) + f" or {forms[-1]}" if len(forms) > 1 else str(forms[0])
    raise DataError(
        f"{what} of shape {raw.shape} do not divide into samples of shape {input_shape}: "
        f"expected {one} for one sample, or a batch (N, ...) of those"
    )


def check_values(raw: np.ndarray, value_range: tuple[float, float] | None = None, what: str = "images") -> None:
    """Refuse NaN/inf, and values outside `value_range` (inclusive) when given."""
    if raw.dtype.kind == "f" and raw.size and not np.isfinite(raw).all():
        raise DataError(f"{what} hold NaN or infinite values")
    if value_range is not None and raw.size:
        lo, hi = raw.min(), raw.max()
        if lo < value_range[0] or hi > value_range[1]:
            raise DataError(
                f"{what} hold values {lo:g}..{hi:g}, outside the range {value_range[0]:g}..{value_range[1]:g} "
                "the model was trained on"
            )


def prepare_images(
    raw: np.ndarray,
    normalization: Normalization | dict | str,
    input_shape: tuple[int, ...] | None = None,
    value_range: tuple[float, float] | None = None,
    what: str = "images",
) -> np.ndarray:
    """Raw images (N, H, W), (N, C, H, W) or (N, K) -> normalised float32 for a model.

    With `input_shape` (per sample, e.g. (1, 28, 28) or (784,)) the result is
    (N, *input_shape); one sample or a batch, as images or flat rows, is accepted, any other
    shape is a DataError. Without it, (N, H, W) becomes (N, 1, H, W) and other shapes are kept.
    NaN/inf, and values outside `value_range` (e.g. PIXEL_RANGE), are DataErrors; `what` names
    the data in messages.
    """
    norm = as_normalization(normalization)
    raw = np.asarray(raw)
    if raw.dtype.kind not in "uif":
        raise DataError(f"{what} must be numeric, got dtype {raw.dtype}")
    check_values(raw, value_range, what)
    if input_shape is not None:
        raw = as_samples(raw, tuple(input_shape), what)
    elif raw.ndim == 3:
        raw = raw[:, None]
    return norm.apply(raw)
