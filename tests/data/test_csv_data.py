"""CSV reader: Kaggle digit-recognizer layout, unlabelled files, bad rows with line numbers."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.data import load_dataset, read_csv
from xnet.data.csv import image_shape
from xnet.errors import DataError


def write_csv(path, rows, header=True, labelled=True, k=None):
    k = k if k is not None else len(rows[0]) - labelled
    names = (["label"] if labelled else []) + [f"pixel{i}" for i in range(k)]
    lines = ([",".join(names)] if header else []) + [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_labelled_file(tmp_path):
    rows = [[3, 0, 255, 7, 1], [0, 10, 20, 30, 40], [9, 1, 2, 3, 4]]
    x, y = read_csv(write_csv(tmp_path / "train.csv", rows))
    assert x.dtype == np.uint8 and x.shape == (3, 4)
    np.testing.assert_array_equal(x, np.array(rows)[:, 1:])
    assert y.dtype == np.int64 and y.tolist() == [3, 0, 9]


def test_unlabelled_file_for_prediction(tmp_path):
    rows = [[0, 255, 7, 1], [10, 20, 30, 40]]
    x, y = read_csv(write_csv(tmp_path / "test.csv", rows, labelled=False))
    assert y is None and x.tolist() == rows
    ds = load_dataset(f"csv:{tmp_path / 'test.csv'}")
    assert ds.train.y is None and ds.num_classes is None and ds.test is None
    assert ds.input_shape == (1, 2, 2)
    assert "2 rows, no labels" in ds.source


def test_headerless_file_is_label_first(tmp_path):
    x, y = read_csv(write_csv(tmp_path / "h.csv", [[1, 5, 6], [2, 7, 8]], header=False))
    assert y.tolist() == [1, 2] and x.tolist() == [[5, 6], [7, 8]]


def test_square_images_and_flat_vectors(tmp_path):
    assert image_shape(784) == (1, 28, 28) and image_shape(10) == (10,) and image_shape(1) == (1,)
    rng = np.random.default_rng(0)
    rows = np.concatenate([np.arange(12)[:, None] % 10, rng.integers(0, 256, (12, 784))], axis=1)
    ds = load_dataset(f"csv:{write_csv(tmp_path / 'k.csv', rows.tolist())}", val_split=0.25)
    assert ds.input_shape == (1, 28, 28) and ds.train.x.shape == (9, 1, 28, 28)
    assert ds.num_classes == 10 and len(ds.val) == 3
    both = np.concatenate([ds.train.x, ds.val.x]).reshape(12, -1) * 255
    assert sorted(np.round(both).astype(int).sum(1)) == sorted(rows[:, 1:].sum(1))
    flat = load_dataset(f"csv:{write_csv(tmp_path / 'f.csv', [[1, 2, 3], [0, 4, 5]])}")
    assert flat.input_shape == (2,) and flat.num_classes == 2


GOOD = [[1, 0, 1, 2, 3, 4, 5], [2, 9, 8, 7, 6, 5, 4], [0, 0, 0, 0, 0, 0, 0], [3, 1, 1, 1, 1, 1, 1]]


@pytest.mark.parametrize(
    "line,row,message",
    [
        (4, [1, 2, 3], "line 4: expected 7 values (label + 6 pixels), got 3"),
        (3, [1, 2, "abc", 4, 5, 6, 7], "line 3: pixel 1 is 'abc', not an integer"),
        (5, [1, 2, 3, 256, 5, 6, 7], "line 5: pixel 2 is 256, outside 0..255"),
        (2, [1, -1, 3, 4, 5, 6, 7], "line 2: pixel 0 is -1, outside 0..255"),
        (3, [1, 2, 3, 4, 5, 6, "1.5"], "line 3: pixel 5 is '1.5', not an integer"),
        (4, [-2, 2, 3, 4, 5, 6, 7], "line 4: negative label -2"),
        (2, ["x", 2, 3, 4, 5, 6, 7], "line 2: label is 'x', not an integer"),
        (3, [1, 99999999999, 3, 4, 5, 6, 7], "line 3: pixel 0 is 99999999999, outside 0..255"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, line, row, message):
    rows = [list(r) for r in GOOD]
    rows.insert(line - 2, row)  # line 1 is the header
    p = write_csv(tmp_path / "bad.csv", rows, k=6)
    with pytest.raises(DataError) as e:
        read_csv(p)
    assert str(e.value) == f"{p}: {message}"


def test_bad_row_in_unlabelled_file(tmp_path):
    p = write_csv(tmp_path / "t.csv", [[1, 2], [3, 300]], labelled=False)
    with pytest.raises(DataError, match="line 3: pixel 1 is 300, outside 0..255"):
        read_csv(p)


def test_empty_header_only_and_missing(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty file"):
        read_csv(tmp_path / "empty.csv")
    (tmp_path / "h.csv").write_text("label,pixel0,pixel1\n")
    with pytest.raises(DataError, match="no data rows"):
        read_csv(tmp_path / "h.csv")
    with pytest.raises(DataError, match="no such file"):
        load_dataset(f"csv:{tmp_path / 'missing.csv'}")
    (tmp_path / "l.csv").write_text("pixel0,label\n1,2\n")
    with pytest.raises(DataError, match="label column must come first"):
        read_csv(tmp_path / "l.csv")


def test_blank_lines_and_crlf_are_tolerated(tmp_path):
    p = tmp_path / "crlf.csv"
    p.write_bytes(b"label,pixel0,pixel1\r\n1,2,3\r\n\r\n0,4,5\r\n")
    x, y = read_csv(p)
    assert x.tolist() == [[2, 3], [4, 5]] and y.tolist() == [1, 0]


def test_line_numbers_count_blank_lines(tmp_path):
    p = tmp_path / "gaps.csv"
    p.write_text("label,pixel0,pixel1\n1,2,3\n\n\n0,4,5\n2,6,999\n")
    with pytest.raises(DataError, match="line 6: pixel 1 is 999, outside 0..255"):
        read_csv(p)
    p.write_text("label,pixel0,pixel1\n1,2,3\n\n0,4\n")
    with pytest.raises(DataError, match="line 4: expected 3 values"):
        read_csv(p)


def test_relative_path_found_under_data_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "kaggle").mkdir()
    write_csv(tmp_path / "kaggle" / "train.csv", [[1, 2, 3, 4, 5]])
    ds = load_dataset("csv:train.csv", data_dir=tmp_path / "kaggle")
    assert ds.train.y.tolist() == [1] and str(tmp_path / "kaggle" / "train.csv") in ds.source
    monkeypatch.setenv("XNET_DATA_DIR", str(tmp_path))
    ds = load_dataset("csv:kaggle/train.csv", normalize="none", flatten=True)
    assert ds.train.x.tolist() == [[2, 3, 4, 5]]
    with pytest.raises(DataError, match="missing.csv: no such file"):
        load_dataset("csv:missing.csv", data_dir=tmp_path)
