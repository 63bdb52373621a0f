"""Pixels: a split's images kept as raw uint8 rows, normalised to float32 one batch at a time.

MNIST's 60k training images are 47 MB as uint8 and 188 MB as float32. Keeping the uint8 rows (on
the host and on the device) and normalising each batch as it is served saves the float32 copy;
`normalize_batch` does the same float32 operations in the same order as `Normalization.apply`, so
the batches are bit for bit those of the float32 array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xnet.backends import Array, Backend
from xnet.data.prepare import Normalization

PIXEL_DTYPE = np.dtype(np.uint8)


class Pixels:
    """Raw uint8 samples (N, *sample_shape) and the Normalization that makes them float32 inputs.

    Looks like the float32 array it stands for (shape, dtype, len, row slices); `materialize()`
    builds that array, exactly as `Normalization.apply` does.
    """

    def __init__(self, raw: np.ndarray, normalization: Normalization):
        raw = np.asarray(raw)
        if raw.dtype != PIXEL_DTYPE or raw.ndim < 1:
            raise ValueError(f"Pixels: raw must be a uint8 array of samples (N, ...), got {raw.dtype} {raw.shape}")
        self.raw = raw
        self.normalization = normalization

    @property
    def shape(self) -> tuple[int, ...]:
        """(N, *sample_shape), as the float32 array."""
        return tuple(int(s) for s in self.raw.shape)

    @property
    def dtype(self) -> np.dtype:
        """float32: the dtype of the inputs the pixels stand for."""
        return np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        return self.raw.ndim

    def __len__(self) -> int:
        return int(self.raw.shape[0])

    def __getitem__(self, rows: slice) -> Pixels:
        """The pixels of rows `rows` (a slice: a view of the raw rows)."""
        if not isinstance(rows, slice):
            raise TypeError(f"Pixels: index rows with a slice, got {rows!r:.40}; materialize() for the float32 array")
        return Pixels(self.raw[rows], self.normalization)

    def reshape(self, n: int, *sample_shape: int) -> Pixels:
        """The same pixels with samples of another shape (N, *sample_shape), e.g. (784,) for (1, 28, 28)."""
        return Pixels(self.raw.reshape(n, *sample_shape), self.normalization)

    def materialize(self) -> np.ndarray:
        """The float32 inputs (N, *sample_shape): (raw - offset) / scale."""
        return self.normalization.apply(self.raw)

    def __repr__(self) -> str:
        return f"Pixels(shape={self.shape}, normalization={self.normalization})"


def scaling_constants(backend: Backend, norm: Normalization) -> tuple[Array | None, Array | None]:
    """The offset and scale as float32 0-d device arrays, None where `Normalization.apply` skips the step."""
    offset, scale = np.float32(norm.offset), np.float32(norm.scale)
    # 0-d float32 arrays, not Python floats: the subtraction and division are float32 on every library
    return (
        None if offset == 0 else backend.asarray(np.asarray(offset), "float32"),
        None if scale == 1 else backend.asarray(np.asarray(scale), "float32"),
    )


def normalize_batch(xp: Any, raw: Array, offset: Array | None, scale: Array | None, dtype: str) -> Array:
    """A device batch of raw uint8 rows (B, ...) -> float32 (raw - offset) / scale, then cast to `dtype`.

    The steps and their order are `Normalization.apply`'s, in float32; a float64 batch is the float32
    one cast, as float64 runs cast the float32 prepared data.
    """
    xb = xp.astype(raw, xp.float32)  # a new array: updated in place, no second temporary
    if offset is not None:
        xb -= offset
    if scale is not None:
        xb /= scale
    return xb if dtype == "float32" else xp.astype(xb, xp.float64)
