"""IDX reader: small files written here (gz and raw), broken ones, and `idx:DIR` datasets."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from xnet.data import load_dataset, read_idx, read_idx_pair, write_idx
from xnet.errors import DataError


def idx_bytes(code: int, dims: tuple[int, ...], body: bytes) -> bytes:
    """An IDX file built by hand from the spec (independent of write_idx)."""
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + body


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_reads_hand_built_uint8(tmp_path, gz):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    data = idx_bytes(0x08, (2, 3, 4), a.tobytes())
    p = tmp_path / ("x.idx.gz" if gz else "x.idx")
    p.write_bytes(gzip.compress(data) if gz else data)
    got = read_idx(p)
    assert got.dtype == np.uint8 and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, a)


@pytest.mark.parametrize(
    "code,dtype", [(0x09, ">i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")]
)
def test_reads_other_element_types_big_endian(tmp_path, code, dtype):
    a = np.array([[-3, 1, 100], [7, -120, 0]], dtype=dtype)
    p = tmp_path / "t.idx"
    p.write_bytes(idx_bytes(code, (2, 3), a.tobytes()))
    got = read_idx(p)
    assert got.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(got, a.astype(got.dtype))


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "float64"])
@pytest.mark.parametrize("name", ["w.idx", "w.idx.gz"])
def test_write_read_round_trip(tmp_path, dtype, name):
    a = (np.arange(30).reshape(5, 6) % 17).astype(dtype)
    write_idx(tmp_path / name, a)
    got = read_idx(tmp_path / name)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, a)


def test_gzip_detected_by_content_not_name(tmp_path):
    a = np.arange(6, dtype=np.uint8)
    p = tmp_path / "labels-without-suffix"
    p.write_bytes(gzip.compress(idx_bytes(0x08, (6,), a.tobytes())))
    np.testing.assert_array_equal(read_idx(p), a)


def test_wrong_magic(tmp_path):
    p = tmp_path / "bad-magic"
    p.write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 2) + b"\x00\x01")
    with pytest.raises(DataError, match="not an IDX file: magic number 0x01020801") as e:
        read_idx(p)
    assert str(p) in str(e.value)


def test_truncated_message_names_file_and_sizes(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(idx_bytes(0x08, (60000, 28, 28), bytes(1000))))
    with pytest.raises(DataError) as e:
        read_idx(p)
    assert str(e.value) == (
        f"{p}: truncated: header says 60000x28x28 = 47040000 bytes of data, file has 1000"
    )


def test_extra_bytes_and_wide_types_report_sizes(tmp_path):
    p = tmp_path / "long"
    p.write_bytes(idx_bytes(0x08, (2, 2), bytes(5)))
    with pytest.raises(DataError, match="extra bytes.*2x2 = 4 bytes of data, file has 5"):
        read_idx(p)
    p.write_bytes(idx_bytes(0x0B, (3,), bytes(4)))
    with pytest.raises(DataError, match=r"truncated: header says 3 \(int16, 2 bytes each\) = 6"):
        read_idx(p)


def test_truncated_header(tmp_path):
    p = tmp_path / "short-header"
    p.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">I", 5))
    with pytest.raises(DataError, match="truncated: header declares 3 dimensions"):
        read_idx(p)
    p.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="too short for an IDX header"):
        read_idx(p)


def test_wrong_type_byte(tmp_path):
    p = tmp_path / "bad-type"
    p.write_bytes(idx_bytes(0x07, (2,), b"\x00\x01"))
    with pytest.raises(DataError, match=r"unknown IDX element type 0x07.*0x08 uint8") as e:
        read_idx(p)
    assert str(p) in str(e.value)


def test_zero_dimensions(tmp_path):
    p = tmp_path / "nodims"
    p.write_bytes(bytes([0, 0, 8, 0]))
    with pytest.raises(DataError, match="0 dimensions"):
        read_idx(p)


def test_truncated_and_corrupt_gzip(tmp_path):
    good = gzip.compress(idx_bytes(0x08, (100, 10), bytes(range(250)) * 4))
    p = tmp_path / "cut.gz"
    p.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="truncated gzip") as e:
        read_idx(p)
    assert str(p) in str(e.value)
    bad = bytearray(good)
    bad[-6] ^= 0xFF  # inside the CRC32 trailer
    p.write_bytes(bytes(bad))
    with pytest.raises(DataError, match="corrupt gzip"):
        read_idx(p)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "nope.gz")


def test_pair_count_mismatch(tmp_path):
    write_idx(tmp_path / "img.gz", np.zeros((5, 2, 2), np.uint8))
    write_idx(tmp_path / "lab.gz", np.zeros((4,), np.uint8))
    with pytest.raises(DataError, match="count mismatch: 5 images but 4 labels") as e:
        read_idx_pair(tmp_path / "img.gz", tmp_path / "lab.gz")
    assert "img.gz" in str(e.value) and "lab.gz" in str(e.value)


def test_pair_labels_must_be_1d_integers(tmp_path):
    write_idx(tmp_path / "img", np.zeros((4, 2, 2), np.uint8))
    write_idx(tmp_path / "lab", np.zeros((4, 2), np.uint8))
    with pytest.raises(DataError, match="labels must be 1-D"):
        read_idx_pair(tmp_path / "img", tmp_path / "lab")
    write_idx(tmp_path / "lab", np.zeros((4,), np.float32))
    with pytest.raises(DataError, match="labels must be integers"):
        read_idx_pair(tmp_path / "img", tmp_path / "lab")


def test_pair_returns_int64_labels(tmp_path):
    write_idx(tmp_path / "img", np.ones((3, 2, 2), np.uint8))
    write_idx(tmp_path / "lab", np.array([2, 0, 1], np.uint8))
    x, y = read_idx_pair(tmp_path / "img", tmp_path / "lab")
    assert y.dtype == np.int64 and y.tolist() == [2, 0, 1] and x.shape == (3, 2, 2)


def _write_idx_dir(folder, n_train=12, n_test=6, shape=(5, 7), classes=3, gz=True):
    rng = np.random.default_rng(1)
    sets = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        y = (np.arange(n) % classes).astype(np.uint8)
        sfx = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{sfx}", x)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{sfx}", y)
        sets[prefix] = (x, y)
    return sets


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_idx_dir_dataset_reads_classes_and_shape(tmp_path, gz):
    sets = _write_idx_dir(tmp_path, shape=(5, 7), classes=4, gz=gz)
    ds = load_dataset(f"idx:{tmp_path}")
    assert ds.num_classes == 4 and ds.input_shape == (1, 5, 7) and ds.task == "classification"
    assert ds.train.x.shape == (12, 1, 5, 7) and ds.test.x.shape == (6, 1, 5, 7)
    np.testing.assert_allclose(ds.train.x[:, 0], sets["train"][0] / np.float32(255), rtol=1e-6)
    np.testing.assert_array_equal(ds.test.y, sets["t10k"][1])
    assert str(tmp_path) in ds.source
    flat = load_dataset(f"idx:{tmp_path}", flatten=True)
    assert flat.input_shape == (35,) and flat.train.x.shape == (12, 35)


def test_idx_dir_without_test_files_and_errors(tmp_path):
    _write_idx_dir(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="only one of the two t10k"):
        load_dataset(f"idx:{tmp_path}")
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    ds = load_dataset(f"idx:{tmp_path}")
    assert ds.test is None and len(ds.train) == 12
    with pytest.raises(DataError, match="no such folder"):
        load_dataset(f"idx:{tmp_path / 'missing'}")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="expected train-images-idx3-ubyte.gz"):
        load_dataset(f"idx:{empty}")
