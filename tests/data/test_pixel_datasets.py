"""load_dataset keeps uint8 images as Pixels: splits build the same float32 x as before, only when read."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest

from xnet.data import Pixels, Split, load_dataset, write_idx
from xnet.data.mnist import locate_mnist, read_mnist
from xnet.data.prepare import split_indices


@pytest.mark.parametrize(
    "normalize,flatten", [("unit", False), ("centered", True), ("standard", False)], ids=["unit", "centered", "std"]
)
def test_mnist_splits_hold_pixels_whose_x_is_the_old_float32_array(mnist_dir, normalize, flatten):
    ds = load_dataset("mnist", data_dir=mnist_dir, normalize=normalize, val_split=0.1, seed=4, flatten=flatten)
    trx, _, tex, _ = read_mnist(locate_mnist(mnist_dir)[0])
    tr_idx, val_idx = split_indices(len(trx), 0.1, 4)
    shape = (784,) if flatten else (1, 28, 28)
    norm = ds.normalization
    expected = {  # what load_dataset returned before the pixels were kept: Normalization.apply's arrays
        "train": norm.apply(trx, tr_idx).reshape(-1, *shape),
        "val": norm.apply(trx, val_idx).reshape(-1, *shape),
        "test": norm.apply(tex).reshape(-1, *shape),
    }
    for name, split in ds.splits().items():
        assert isinstance(split.inputs, Pixels) and split.inputs.raw.dtype == np.uint8
        assert not split.materialized and len(split) == len(expected[name])
        assert split.inputs.shape == expected[name].shape
        x = split.x
        assert x.dtype == np.float32 and split.materialized
        np.testing.assert_array_equal(x, expected[name])
        assert split.x is x  # built once, then kept


def test_mnist_load_holds_uint8_only(mnist_dir):
    # the file's uint8 images, the train/val rows' uint8 copies: no float32 array of the whole set
    budget = (60000 * 2 + 10000) * 784
    gc.collect()
    tracemalloc.start()
    try:
        ds = load_dataset("mnist", data_dir=mnist_dir, val_split=0.1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(ds.train) == 54000 and not ds.train.materialized
    assert peak < budget * 1.06, f"peak {peak / 1e6:.0f} MB, budget {budget / 1e6:.0f} MB"


def test_limit_keeps_copies_of_the_rows_not_views_of_the_whole_file(mnist_dir):
    ds = load_dataset("mnist", data_dir=mnist_dir, limit=600)
    for split in (ds.train, ds.test):
        raw = split.inputs.raw
        # a view would keep the whole file's 47 MB array alive behind 600 images
        assert raw.base is None or raw.base.nbytes == raw.nbytes


def test_idx_and_csv_images_are_pixels_sine_stays_float(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (9, 4, 4), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", (np.arange(9) % 3).astype(np.uint8))
    ds = load_dataset(f"idx:{tmp_path}", normalize="centered")
    assert isinstance(ds.train.inputs, Pixels)
    np.testing.assert_array_equal(ds.train.x[:, 0], (images.astype(np.float32) - np.float32(127.5)) / np.float32(255))

    rows = ["label," + ",".join(f"pixel{i}" for i in range(4))] + [f"{k},{k},0,255,{2 * k}" for k in range(5)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    csv = load_dataset(f"csv:{tmp_path / 'd.csv'}")
    assert isinstance(csv.train.inputs, Pixels) and csv.train.x.dtype == np.float32
    np.testing.assert_array_equal(csv.train.x[:, 0, 0, 1], np.full(5, 0, np.float32))
    np.testing.assert_array_equal(csv.train.x[:, 0, 1, 0], np.full(5, 1, np.float32))

    sine = load_dataset("sine", n_train=20, n_test=5)
    assert sine.train.materialized and sine.train.inputs is sine.train.x and sine.train.x.dtype == np.float32


def test_split_from_arrays_and_reshaped_pixels():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    plain = Split(x, None)
    assert plain.inputs is x and plain.x is x and plain.materialized and len(plain) == 3
    ds = load_dataset("sine", n_train=4, n_test=2)
    assert ds.train.reshaped(1).x.shape == (4, 1)
    raw = np.arange(3 * 16, dtype=np.uint8).reshape(3, 1, 4, 4)
    pix = Split(Pixels(raw, ds.normalization), np.arange(3))
    flat = pix.reshaped(16)
    assert isinstance(flat.inputs, Pixels) and not flat.materialized
    np.testing.assert_array_equal(flat.x, pix.x.reshape(3, 16))
