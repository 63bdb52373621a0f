"""A run's data: the checks training needs of a dataset, and the cache that lets runs on the same data share it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xnet.backends.cpu_memory import release_freed_memory
from xnet.config import RunConfig
from xnet.data.pixels import Pixels
from xnet.errors import ConfigError, DataError


def check_dataset(cfg: RunConfig, ds: Any) -> None:
    """What training needs of the data: labels, images for --augment, finite values."""
    if ds.train.y is None:
        raise DataError(
            f"{cfg.dataset}: the data has no labels (no label column), so there is nothing to train on; "
            "an unlabelled file such as Kaggle's test.csv is for `xnet predict`"
        )
    shape = tuple(ds.input_shape)
    square = len(shape) == 1 and shape[0] > 1 and math.isqrt(shape[0]) ** 2 == shape[0]
    if cfg.augment and len(shape) != 3 and not square:
        raise ConfigError(
            f"augment: shifts and rotations apply to images, but {cfg.dataset} has samples of shape {shape}; "
            "drop --augment"
        )
    for name, split in ds.splits().items():
        # uint8 pixels are always finite: their float32 x is not built for this check
        inputs = None if isinstance(split.inputs, Pixels) else split.inputs
        for what, a in (("inputs", inputs), ("targets", split.y)):
            # one float64 sum is finite exactly when every value is (short of a 1e308 overflow, checked)
            if a is None or a.dtype.kind != "f" or np.isfinite(np.sum(a, dtype=np.float64)):
                continue
            bad = int(np.count_nonzero(~np.isfinite(a)))
            if bad:
                raise DataError(
                    f"{cfg.dataset}: the {name} {what} contain {bad} NaN or infinite value{'s' * (bad != 1)}; "
                    "fix or drop those samples"
                )


def data_key(cfg: RunConfig) -> tuple[Any, ...]:
    """The options that decide what load_dataset returns: runs with equal keys can share one Dataset."""
    return (cfg.dataset, cfg.data_dir, cfg.normalize, cfg.val_split, cfg.seed, cfg.limit)


class DataCache:
    """The dataset loaded last, kept for the next run that asks for the same data.

    One entry only: a study's variants usually share their data (one MNIST is 55 MB as uint8 pixels,
    220 MB once a split's float32 x is read), so holding one copy per variant (or per seed) is what
    this avoids. Runs only read the arrays.
    """

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._data: Any = None

    def load(self, cfg: RunConfig) -> Any:
        """The Dataset `cfg` asks for, read unless the last one loaded was the same."""
        from xnet.data import load_dataset

        key = data_key(cfg)
        if key != self._key:
            self._key, self._data = None, None  # free the old arrays before reading the new ones
            self._data = load_dataset(
                cfg.dataset, data_dir=cfg.data_dir, normalize=cfg.normalize, val_split=cfg.val_split,
                seed=cfg.seed, limit=cfg.limit,
            )  # fmt: skip
            self._key = key
            release_freed_memory()  # the file's bytes and conversion chunks (xnet/backends/cpu_memory.py)
        return self._data
