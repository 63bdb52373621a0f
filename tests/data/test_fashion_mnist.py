"""Fashion-MNIST: found, verified and downloaded as MNIST is, in its own fashion-mnist/ folder."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
from digitsets import write_digit_set

from xnet.data import load_dataset
from xnet.data.datasets import class_names
from xnet.data.fashion_mnist import FASHION_MNIST
from xnet.data.idx import read_idx
from xnet.data.mnist import verify
from xnet.errors import DataError

DEBIAN = Path("/usr/share/datasets/fashion-mnist")  # apt-get install dataset-fashion-mnist


@pytest.fixture
def fake_set(tmp_path, monkeypatch):
    """A tiny set in tmp/served/fashion-mnist whose md5s replace the official Fashion-MNIST ones."""
    folder = write_digit_set(tmp_path / "served" / "fashion-mnist", 30, 12, seed=4)
    for _, name in FASHION_MNIST.files:
        data = (folder / name).read_bytes()
        monkeypatch.setitem(FASHION_MNIST.md5, name, hashlib.md5(data).hexdigest())
        monkeypatch.setitem(FASHION_MNIST.md5, name[:-3], hashlib.md5(gzip.decompress(data)).hexdigest())
    return folder


def test_reads_the_files_under_data_dir_fashion_mnist(fashion_isolated, fake_set):
    ds = load_dataset("fashion-mnist", data_dir=fake_set.parent, normalize="none")
    images = read_idx(fake_set / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(ds.train.x[:, 0], images.astype(np.float32))
    assert (len(ds.train), len(ds.test), ds.num_classes, ds.input_shape) == (30, 12, 10, (1, 28, 28))
    assert ds.name == "fashion-mnist" and str(fake_set) in ds.source


def test_downloads_into_its_own_cache_folder(fashion_isolated, fake_set, serve):
    ds = load_dataset("fashion-mnist", mirrors=[serve(fake_set)], timeout=5)
    cache = fashion_isolated / "cache" / "xnet" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(n for _, n in FASHION_MNIST.files)
    assert not (fashion_isolated / "cache" / "xnet" / "mnist").exists()
    assert len(ds.train) == 30 and "downloaded" in ds.source


def test_a_recompressed_copy_passes_on_its_content_and_a_changed_one_fails(tmp_path, fake_set):
    name = "train-labels-idx1-ubyte.gz"
    content = gzip.decompress((fake_set / name).read_bytes())
    copy = tmp_path / "copy" / name
    copy.parent.mkdir()
    copy.write_bytes(gzip.compress(content, compresslevel=1, mtime=12345))  # other bytes, same content
    assert copy.read_bytes() != (fake_set / name).read_bytes()
    verify(copy, FASHION_MNIST)
    copy.write_bytes(gzip.compress(content[:-1] + bytes([(content[-1] + 1) % 256])))
    with pytest.raises(DataError, match=f"md5 mismatch: got .*, expected {FASHION_MNIST.md5[name]}"):
        verify(copy, FASHION_MNIST)


@pytest.mark.skipif(not DEBIAN.is_dir(), reason=f"Fashion-MNIST not found in {DEBIAN} (apt-get install "
                    "dataset-fashion-mnist)")  # fmt: skip
def test_the_real_files_from_debian(fashion_isolated):
    """Debian's recompressed originals: 60000 + 10000 images, 6000 and 1000 of each class."""
    ds = load_dataset("fashion-mnist", data_dir=DEBIAN, normalize="none")
    assert (len(ds.train), len(ds.test), ds.input_shape) == (60000, 10000, (1, 28, 28))
    assert np.bincount(ds.train.y).tolist() == [6000] * 10
    assert np.bincount(ds.test.y).tolist() == [1000] * 10
    assert ds.train.x.max() == 255 and ds.train.x.min() == 0


def test_class_names_are_the_datasets_own_or_the_labels():
    names = class_names("fashion-mnist", 10)
    assert len(set(names)) == 10 and (names[0], names[5], names[9]) == ("T-shirt/top", "Sandal", "Ankle boot")
    assert class_names("mnist", 10) == [str(k) for k in range(10)]
    assert class_names("csv:train.csv", 3) == ["0", "1", "2"]
    assert class_names("fashion-mnist", 4) == ["0", "1", "2", "3"]  # a set with other labels keeps numbers
