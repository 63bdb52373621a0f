"""The real MNIST files: shapes, label counts, pixel range, md5 checks, search order, memory."""

from __future__ import annotations

import gc
import gzip
import tracemalloc

import numpy as np
import pytest

from xnet.data import load_dataset, locate_mnist
from xnet.data.mnist import MNIST_FILES, MNIST_MD5, md5_of, read_mnist
from xnet.errors import DataError

# the well-known class counts of MNIST
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $XNET_DATA_DIR, an empty cache, no downloads: only data_dir can supply MNIST."""
    monkeypatch.delenv("XNET_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XNET_MNIST_MIRRORS", "")
    return tmp_path


def test_md5_of_shared_files_are_the_official_ones(mnist_dir):
    for name in MNIST_FILES.values():
        assert md5_of(mnist_dir / name) == MNIST_MD5[name]
    assert MNIST_MD5["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"


def test_raw_arrays(mnist_dir):
    files, source = locate_mnist(mnist_dir)
    assert source == f"mnist from {mnist_dir} (md5 verified)"
    trx, trl, tex, tel = read_mnist(files)
    assert trx.shape == (60000, 28, 28) and trx.dtype == np.uint8
    assert tex.shape == (10000, 28, 28) and tel.shape == (10000,)
    assert trx.min() == 0 and trx.max() == 255
    assert np.bincount(trl).tolist() == TRAIN_COUNTS
    assert np.bincount(tel).tolist() == TEST_COUNTS
    assert trl[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert tel[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_load_dataset_mnist(mnist_dir):
    ds = load_dataset("mnist", data_dir=mnist_dir)
    assert ds.train.x.shape == (60000, 1, 28, 28) and ds.train.x.dtype == np.float32
    assert ds.test.x.shape == (10000, 1, 28, 28) and ds.test.y.dtype == np.int64
    assert ds.num_classes == 10 and ds.input_shape == (1, 28, 28) and ds.val is None
    assert float(ds.train.x.min()) == 0.0 and float(ds.train.x.max()) == 1.0
    assert np.bincount(ds.train.y).tolist() == TRAIN_COUNTS
    assert "md5 verified" in ds.source and str(mnist_dir) in ds.source


def test_limit_takes_the_first_samples(mnist_dir):
    ds = load_dataset("mnist", data_dir=mnist_dir, limit=600, flatten=True)
    assert ds.train.x.shape == (600, 784) and ds.test.x.shape == (100, 784)
    assert ds.train.y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert "first 600 training, 100 test" in ds.source


def test_given_data_dir_is_the_only_place_looked_in(mnist_dir, isolated, monkeypatch):
    with pytest.raises(DataError, match="MNIST not found"):
        locate_mnist(isolated / "nowhere")
    # as torchvision's root=: a given folder is never swapped for $XNET_DATA_DIR behind the user's back
    monkeypatch.setenv("XNET_DATA_DIR", str(mnist_dir.parent))
    with pytest.raises(DataError, match="MNIST not found in .*nowhere"):
        locate_mnist(isolated / "nowhere")
    # data_dir may name the folder holding mnist/ as well as mnist/ itself
    _, source = locate_mnist(mnist_dir.parent)
    assert str(mnist_dir) in source


def _copy_set(mnist_dir, folder, corrupt=None):
    folder.mkdir()
    for name in MNIST_FILES.values():
        if name == corrupt:
            data = bytearray((mnist_dir / name).read_bytes())
            data[len(data) // 2] ^= 0x01
            (folder / name).write_bytes(bytes(data))
        else:
            (folder / name).symlink_to(mnist_dir / name)


def test_flipped_byte_detected(mnist_dir, isolated):
    bad = isolated / "bad"
    _copy_set(mnist_dir, bad, corrupt="train-labels-idx1-ubyte.gz")
    with pytest.raises(DataError) as e:
        load_dataset("mnist", data_dir=bad)
    msg = str(e.value)
    assert f"{bad}/train-labels-idx1-ubyte.gz: md5 mismatch" in msg
    assert "expected d53e105ee54ea40749a09fcbcd1e9432" in msg and "\n" not in msg


def test_decompressed_files_verified_too(mnist_dir, isolated):
    folder = isolated / "raw"
    _copy_set(mnist_dir, folder)
    for name in ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (folder / name).unlink()
        (folder / name[:-3]).write_bytes(gzip.decompress((mnist_dir / name).read_bytes()))
    ds = load_dataset("mnist", data_dir=folder, limit=60)
    assert ds.train.y[:4].tolist() == [5, 0, 4, 1]
    raw = folder / "t10k-labels-idx1-ubyte"
    data = bytearray(raw.read_bytes())
    data[100] = (data[100] + 1) % 10
    raw.write_bytes(bytes(data))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: md5 mismatch"):
        load_dataset("mnist", data_dir=folder)


def test_memory_one_uint8_copy_plus_float32(mnist_dir):
    # uint8 train + test images, plus their float32 results (labels are small)
    budget = (60000 + 10000) * 784 * (1 + 4)
    gc.collect()
    tracemalloc.start()
    try:
        ds = load_dataset("mnist", data_dir=mnist_dir, normalize="standard", val_split=0.1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(ds.train) == 54000
    assert peak < budget * 1.06, f"peak {peak / 1e6:.0f} MB, budget {budget / 1e6:.0f} MB"
