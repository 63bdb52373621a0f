"""`xnet train --dataset fashion-mnist`: bad files and names are one line, exit 2, nothing written."""

from __future__ import annotations

import hashlib

from clirun import one_line_error, xnet
from digitsets import write_digit_set

from xnet.data.fashion_mnist import FASHION_MNIST


def test_a_wrong_checksum_is_one_line_exit_2_and_nothing_written(fashion_isolated):
    folder = write_digit_set(fashion_isolated / "data" / "fashion-mnist", 20, 6)  # not the official files
    out = fashion_isolated / "run"
    line = one_line_error(xnet("train", "--dataset", "fashion-mnist", "--data-dir", str(folder.parent),
                               "--epochs", "1", "--out", str(out), "-q"))  # fmt: skip
    assert "md5 mismatch" in line and "expected" in line and "Fashion-MNIST" in line
    assert any(f"got {hashlib.md5((folder / n).read_bytes()).hexdigest()}" in line for _, n in FASHION_MNIST.files)
    assert any(f"expected {FASHION_MNIST.md5[n]}" in line for _, n in FASHION_MNIST.files)  # the official md5
    assert not out.exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted(n for _, n in FASHION_MNIST.files)


def test_an_unknown_dataset_names_fashion_mnist(fashion_isolated):
    line = one_line_error(xnet("train", "--dataset", "fashion", "--epochs", "1", "-q"))
    assert "unknown dataset 'fashion'" in line and "fashion-mnist" in line
