"""The Trainer takes Splits of uint8 Pixels: it trains and evaluates on them as on the float32 arrays,
without building those arrays."""

from __future__ import annotations

import numpy as np
import pytest
from test_trainer import blobs, make, params

from xnet.data import DataLoader, Pixels, Split
from xnet.data.prepare import fit_normalization
from xnet.errors import DataError
from xnet.train.preflight import check_finite_data


def pixel_blobs(n: int, seed: int = 0) -> tuple[Split, Split]:
    """The blobs as uint8 "pixels" (centred) and the same samples as float32 inputs."""
    x, y = blobs(n, seed)
    raw = np.clip(np.rint(x * 30 + 100), 0, 255).astype(np.uint8)
    pixels = Pixels(raw, fit_normalization("centered", raw))
    return Split(pixels, y), Split(pixels.materialize(), y)


def test_fit_and_evaluate_on_pixels_match_the_float_arrays(backend):
    train_px, train_fl = pixel_blobs(96)
    test_px, test_fl = pixel_blobs(40, seed=1)
    results = []
    for train, test in ((train_px, test_px), (train_fl, test_fl)):
        t = make(backend)
        assert t.check_model(train) == 3
        history = t.fit(train, epochs=2, val=test, batch_size=16, verbose=0)
        results.append((history["val_loss"], t.evaluate(test).loss, params(t)))
    assert not train_px.materialized and not test_px.materialized  # the float32 arrays were never built
    (h1, e1, p1), (h2, e2, p2) = results
    assert h1 == h2 and e1 == e2
    for a, b in zip(p1, p2, strict=True):
        np.testing.assert_array_equal(a, b)


def test_finite_data_check_skips_pixels_and_still_finds_float_nans(backend):
    split, floats = pixel_blobs(8)
    check_finite_data(backend, DataLoader(split.inputs, split.y, 4, backend), float("nan"), 1, 1)  # no error
    x = floats.x.copy()
    x[3, 1] = np.nan
    with pytest.raises(DataError, match="training inputs contain NaN"):
        check_finite_data(backend, DataLoader(x, floats.y, 4, backend), float("nan"), 1, 1)
