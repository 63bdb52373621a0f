"""A training run keeps MNIST as uint8 pixels and trains exactly as on the float32 arrays."""

from __future__ import annotations

import numpy as np
import pytest

import xnet.data
from xnet.config import RunConfig, validate
from xnet.data import Dataset, Split
from xnet.runs.data import DataCache
from xnet.runs.run import run_training
from xnet.train.progress import Reporter


def _as_float_arrays(ds: Dataset) -> Dataset:
    """The same Dataset with every split's float32 x built up front: the path before pixels."""
    for name, split in ds.splits().items():
        setattr(ds, name, Split(split.x, split.y))
    return ds


def _train(tmp_path, name: str, cache: DataCache, **options) -> tuple[str, dict[str, np.ndarray]]:
    out = tmp_path / name
    cfg = validate(RunConfig(dataset="mnist", limit=480, val_split=0.125, epochs=2, batch_size=32, hidden=[16],
                             seed=3, quiet=True, out=str(out), **options))  # fmt: skip
    run_training(cfg, Reporter(), cache=cache)
    with np.load(out / "model.npz") as f:
        weights = {k: f[k] for k in f.files if k.startswith("s/")}  # weights and optimizer state
    rows = [line.split(",") for line in (out / "history.csv").read_text().splitlines()]
    timed = rows[0].index("seconds")  # wall time: the one column that differs between equal runs
    return "\n".join(",".join(r[:timed] + r[timed + 1 :]) for r in rows), weights


@pytest.mark.parametrize(
    "options", [{}, {"normalize": "standard", "augment": True, "dropout": 0.2}], ids=["default", "std-augment"]
)
def test_run_trains_on_pixels_exactly_as_on_float_arrays(tmp_path, monkeypatch, mnist_dir, options):
    monkeypatch.setenv("XNET_DATA_DIR", str(mnist_dir.parent))
    cache = DataCache()
    history, weights = _train(tmp_path, "pixels", cache, **options)
    ds = cache._data
    for split in ds.splits().values():  # training, validation and test read only the uint8 pixels
        assert isinstance(split.inputs, xnet.data.Pixels) and not split.materialized

    load = xnet.data.load_dataset
    monkeypatch.setattr(xnet.data, "load_dataset", lambda *a, **k: _as_float_arrays(load(*a, **k)))
    float_history, float_weights = _train(tmp_path, "floats", DataCache(), **options)
    assert history == float_history and "val_loss" in history
    assert weights.keys() == float_weights.keys() and weights
    for k, w in weights.items():
        np.testing.assert_array_equal(w, float_weights[k], err_msg=k)
