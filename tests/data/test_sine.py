"""The sine regression set: reproducible, matching its formula, configurable."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xnet.data import load_dataset, make_sine
from xnet.errors import ConfigError


def test_defaults_match_the_formula():
    x, y, xt, yt = make_sine()
    assert x.shape == (1000, 1) and y.shape == (1000, 1) and xt.shape == (100, 1)
    assert x.dtype == y.dtype == np.float32
    assert x.min() >= -2 * math.pi and x.max() < 2 * math.pi
    for xs, ys in ((x, y), (xt, yt)):
        for xv, yv in zip(xs[:50, 0].tolist(), ys[:50, 0].tolist(), strict=True):
            expected = 24 * math.sin(3.2 * xv) + 42 * math.cos(2.3 * xv)
            assert yv == pytest.approx(expected, abs=1e-3)
    # x is spread over the whole interval
    assert x.min() < -6 and x.max() > 6


def test_seeded():
    a, b = make_sine(seed=3), make_sine(seed=3)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(make_sine(seed=4)[0], a[0])
    assert not np.array_equal(a[0][:100], a[2])  # test points differ from training points


def test_parameters_and_noise():
    x, y, _, _ = make_sine(500, 10, a=1.0, b=1.0, c=0.0, d=1.0, low=0.0, high=1.0, noise=0.5)
    assert x.min() >= 0 and x.max() < 1
    residual = y[:, 0] - np.sin(x[:, 0])
    assert 0.4 < residual.std() < 0.6 and abs(residual.mean()) < 0.1
    with pytest.raises(ValueError, match="noise must be >= 0"):
        make_sine(noise=-1)
    with pytest.raises(ValueError, match="n_train must be an integer"):
        make_sine(n_train=2.5)


def test_load_dataset_sine():
    ds = load_dataset("sine", seed=1)
    assert ds.task == "regression" and ds.num_classes is None and ds.input_shape == (1,)
    assert ds.normalization.mode == "none"  # pixel modes do not scale regression inputs
    x, y, xt, yt = make_sine(seed=1)
    np.testing.assert_array_equal(ds.train.x, x)
    np.testing.assert_array_equal(ds.test.y, yt)
    assert "24*sin(3.2x) + 42*cos(2.3x)" in ds.source


def test_load_dataset_sine_options_split_and_standard():
    ds = load_dataset("sine", n_train=200, n_test=20, a=2.0, noise=0.0, val_split=0.1)
    assert len(ds.train) == 180 and len(ds.val) == 20 and len(ds.test) == 20
    np.testing.assert_allclose(
        ds.val.y[:, 0], 2 * np.sin(3.2 * ds.val.x[:, 0]) + 42 * np.cos(2.3 * ds.val.x[:, 0]),
        atol=1e-3,
    )
    st = load_dataset("sine", normalize="standard")
    assert st.normalization.mode == "standard"
    assert abs(st.train.x.mean()) < 1e-5 and abs(st.train.x.std() - 1) < 1e-4
    np.testing.assert_array_equal(st.train.y, make_sine()[1])  # targets are never scaled
    with pytest.raises(ConfigError, match="unknown option"):
        load_dataset("sine", amplitude=3)
    with pytest.raises(ConfigError, match="noise must be >= 0"):
        load_dataset("sine", noise=-0.1)
    small = load_dataset("sine", limit=60)
    assert len(small.train) == 60 and len(small.test) == 10
