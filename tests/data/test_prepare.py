"""Preparation: normalisation values, training-only statistics, validation split, one-hot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xnet.data import Normalization, flatten, load_dataset, one_hot, prepare_images, write_idx
from xnet.data.prepare import fit_normalization, split_indices
from xnet.errors import ConfigError, DataError

RAW = np.array([[0, 51, 127], [128, 204, 255]], dtype=np.uint8)


def test_unit_and_centered_values():
    unit = fit_normalization("unit", RAW).apply(RAW)
    assert unit.dtype == np.float32
    np.testing.assert_array_equal(unit, RAW.astype(np.float32) / np.float32(255))
    assert unit[0, 1] == pytest.approx(0.2) and unit[1, 2] == 1.0
    centered = fit_normalization("centered", RAW).apply(RAW)
    np.testing.assert_allclose(centered, (RAW - 127.5) / 255, atol=1e-7)
    assert centered.min() == -0.5 and centered.max() == 0.5
    none = fit_normalization("none", RAW).apply(RAW)
    np.testing.assert_array_equal(none, RAW.astype(np.float32))


def test_standard_uses_only_the_given_rows():
    raw = np.concatenate([np.full((6, 4), 10, np.uint8), np.full((4, 4), 200, np.uint8)])
    raw[0, 0] = 30
    rows = np.arange(6)
    norm = fit_normalization("standard", raw, rows)
    ref = raw[:6].astype(np.float64)
    assert norm.offset == pytest.approx(ref.mean()) and norm.scale == pytest.approx(ref.std())
    out = norm.apply(raw, np.arange(6, 10))
    np.testing.assert_allclose(out, (200 - ref.mean()) / ref.std(), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["uint8", "float32", "int16"])
def test_standard_statistics_match_numpy_over_many_chunks(dtype):
    raw = np.random.default_rng(0).integers(0, 256, (9000, 3, 5)).astype(dtype)
    idx = np.sort(np.random.default_rng(1).permutation(9000)[:7000])
    norm = fit_normalization("standard", raw, idx)
    ref = raw[idx].astype(np.float64)
    assert norm.offset == pytest.approx(ref.mean(), rel=1e-9)
    assert norm.scale == pytest.approx(ref.std(), rel=1e-9)
    out = norm.apply(raw, idx)  # crosses the 4096-row chunk boundary
    np.testing.assert_allclose(out, (ref - ref.mean()) / ref.std(), atol=1e-5)
    assert abs(float(out.mean())) < 1e-4 and abs(float(out.std()) - 1) < 1e-4


def test_constant_data_and_bad_mode():
    assert fit_normalization("standard", np.full((3, 2), 7, np.uint8)).scale == 1.0
    with pytest.raises(ConfigError, match="normalize must be one of unit, centered, standard"):
        fit_normalization("minmax", RAW)


def test_normalization_round_trip_and_prepare_images():
    norm = Normalization("standard", 33.3, 78.6)
    again = Normalization.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert again == norm
    imgs = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    out = prepare_images(imgs, norm.to_dict())
    assert out.shape == (3, 1, 28, 28) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0], (imgs - 33.3) / 78.6, rtol=1e-5, atol=1e-6)
    assert prepare_images(imgs, "unit", (784,)).shape == (3, 784)
    assert prepare_images(imgs[0], "unit", (1, 28, 28)).shape == (1, 1, 28, 28)
    with pytest.raises(DataError, match=r"do not divide into samples of shape \(1, 28, 28\)"):
        prepare_images(np.zeros((3, 27, 27), np.uint8), "unit", (1, 28, 28))
    with pytest.raises(ConfigError, match="needs the training statistics"):
        prepare_images(imgs, "standard")
    with pytest.raises(ConfigError, match="expected mode, offset and scale"):
        Normalization.from_dict({"mode": "unit"})


def test_split_sizes_disjoint_and_seeded():
    tr, va = split_indices(100, 0.1, seed=0)
    assert len(tr) == 90 and len(va) == 10
    assert set(tr.tolist()).isdisjoint(va.tolist()) and len(set(tr) | set(va)) == 100
    tr2, va2 = split_indices(100, 0.1, seed=0)
    np.testing.assert_array_equal(va, va2)
    _, va3 = split_indices(100, 0.1, seed=1)
    assert va3.tolist() != va.tolist()
    assert va.tolist() != list(range(90, 100))  # a random choice, not the tail
    tr, va = split_indices(100, 25)
    assert len(va) == 25 and len(tr) == 75
    assert split_indices(100, 0.0) == (None, None)
    assert len(split_indices(5, 0.01)[1]) == 1


@pytest.mark.parametrize("bad", [1.0, -0.1, 100, 1.5, "0.1", True])
def test_split_rejects_bad_values(bad):
    with pytest.raises(ConfigError, match="val_split"):
        split_indices(100, bad)


def _idx_folder(tmp_path):
    rng = np.random.default_rng(0)
    # training images dark (0..99), test images bright (150..255): their statistics differ
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 100, (40, 4, 4), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", (np.arange(40) % 5).astype(np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(150, 256, (10, 4, 4), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", (np.arange(10) % 5).astype(np.uint8))
    return f"idx:{tmp_path}"


def test_load_dataset_standard_and_val_split(tmp_path):
    name = _idx_folder(tmp_path)
    plain = load_dataset(name, normalize="none")
    ds = load_dataset(name, normalize="standard", val_split=0.25, seed=4)
    assert len(ds.train) == 30 and len(ds.val) == 10 and len(ds.test) == 10
    # the statistics are those of the 30 training rows only (not val, not test)
    tr, va = split_indices(40, 0.25, seed=4)
    train_rows = plain.train.x[tr].astype(np.float64)
    np.testing.assert_array_equal(ds.val.y, plain.train.y[va])
    assert ds.normalization.offset == pytest.approx(train_rows.mean())
    assert ds.normalization.scale == pytest.approx(train_rows.std())
    np.testing.assert_allclose(
        ds.val.x, (plain.train.x[va] - train_rows.mean()) / train_rows.std(), atol=1e-5
    )
    assert abs(float(ds.train.x.mean())) < 1e-5
    assert float(ds.test.x.mean()) > 2  # applied with the training numbers, not refitted
    # the test set is never touched by the split
    np.testing.assert_array_equal(ds.test.y, plain.test.y)
    np.testing.assert_allclose(
        ds.test.x, (plain.test.x - ds.normalization.offset) / ds.normalization.scale, rtol=1e-5
    )
    # labels follow their images through the split
    again = load_dataset(name, normalize="standard", val_split=0.25, seed=4)
    np.testing.assert_array_equal(again.val.x, ds.val.x)
    np.testing.assert_array_equal(again.val.y, ds.val.y)


def test_load_dataset_saved_normalization_flatten_and_errors(tmp_path):
    name = _idx_folder(tmp_path)
    saved = Normalization("standard", 50.0, 25.0)
    ds = load_dataset(name, normalize=saved.to_dict(), flatten=True)
    assert ds.normalization == saved and ds.input_shape == (16,) and ds.train.x.shape == (40, 16)
    plain = load_dataset(name, normalize="none", flatten=True)
    np.testing.assert_allclose(ds.train.x, (plain.train.x - 50) / 25, rtol=1e-6)
    assert "40 train / 10 test" in ds.describe()
    with pytest.raises(DataError, match="expected one of: mnist, fashion-mnist, idx:DIR, csv:FILE, sine"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("idx:")
    with pytest.raises(ConfigError, match="limit must be an integer >= 1"):
        load_dataset(name, limit=0)
    with pytest.raises(ConfigError, match="unknown option"):
        load_dataset(name, mirrors="x")


def test_one_hot_and_flatten():
    y = np.array([2, 0, 1, 2])
    oh = one_hot(y, 3)
    assert oh.dtype == np.float32 and oh.tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    with pytest.raises(ValueError, match=r"labels must be in 0..2"):
        one_hot(np.array([3]), 3)
    assert flatten(np.zeros((5, 1, 4, 3))).shape == (5, 12)
