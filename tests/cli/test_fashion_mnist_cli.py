"""`xnet train --dataset fashion-mnist`: bad files and names are one line, exit 2, nothing written."""

from __future__ import annotations

import hashlib

import pytest
from clirun import one_line_error, xnet
from digitsets import write_digit_set

from xnet.data.fashion_mnist import FASHION_MNIST


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $XNET_DATA_DIR, an empty cache, no default mirrors."""
    monkeypatch.delenv("XNET_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv(FASHION_MNIST.mirrors_env, "")
    return tmp_path


def test_a_wrong_checksum_is_one_line_exit_2_and_nothing_written(isolated):
    folder = write_digit_set(isolated / "data" / "fashion-mnist", 20, 6)  # not the official files
    out = isolated / "run"
    line = one_line_error(xnet("train", "--dataset", "fashion-mnist", "--data-dir", str(folder.parent),
                               "--epochs", "1", "--out", str(out), "-q"))  # fmt: skip
    assert "md5 mismatch" in line and "expected" in line and "Fashion-MNIST" in line
    assert any(f"got {hashlib.md5((folder / n).read_bytes()).hexdigest()}" in line for _, n in FASHION_MNIST.files)
    assert not out.exists()


def test_an_unknown_dataset_names_fashion_mnist(isolated):
    line = one_line_error(xnet("train", "--dataset", "fashion", "--epochs", "1", "-q"))
    assert "unknown dataset 'fashion'" in line and "fashion-mnist" in line
