"""MNIST download against local HTTP servers: cached and verified, corrupt rejected, offline."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from xnet.data import load_dataset, locate_mnist
from xnet.data import mnist as mnist_mod
from xnet.errors import DataError

NAMES = list(mnist_mod.MNIST_FILES.values())
TIMEOUT = 5.0


@pytest.fixture
def refused_url():
    """A URL on a local port nothing listens on (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def env(monkeypatch, tmp_path):
    """An empty cache under tmp, no $XNET_DATA_DIR: MNIST can only come from a download."""
    monkeypatch.delenv("XNET_DATA_DIR", raising=False)
    monkeypatch.delenv("XNET_MNIST_MIRRORS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "xnet" / "mnist"


def _corrupt(folder, name):
    p = folder / name
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


def _leftovers(cache):
    return sorted(p.name for p in cache.iterdir() if p.name.endswith(".part"))


def test_download_caches_and_verifies(env, fake_mnist, serve, refused_url, monkeypatch):
    url = serve(fake_mnist)
    monkeypatch.setenv("XNET_MNIST_MIRRORS", f"{refused_url}, {url}")  # first one is down
    ds = load_dataset("mnist", timeout=TIMEOUT)
    assert ds.source == f"mnist downloaded from {url} to {env} (md5 verified)"
    assert len(ds.train) == 24 and len(ds.test) == 6
    for name in NAMES:
        assert (env / name).read_bytes() == (fake_mnist / name).read_bytes()
    assert _leftovers(env) == []
    # the second load needs no network: found in the cache
    ds2 = load_dataset("mnist", mirrors=[refused_url], timeout=TIMEOUT)
    assert ds2.source == f"mnist from {env} (md5 verified)"
    np.testing.assert_array_equal(ds2.train.x, ds.train.x)


def test_corrupt_file_rejected_not_cached(env, fake_mnist, serve):
    _corrupt(fake_mnist, "t10k-labels-idx1-ubyte.gz")
    url = serve(fake_mnist)
    with pytest.raises(DataError) as e:
        load_dataset("mnist", mirrors=[url], timeout=TIMEOUT)
    msg = str(e.value)
    assert f"{url}t10k-labels-idx1-ubyte.gz: md5 mismatch" in msg
    assert "rejected, not cached" in msg and "\n" not in msg
    assert not (env / "t10k-labels-idx1-ubyte.gz").exists()
    assert sorted(p.name for p in env.iterdir()) == sorted(set(NAMES) - {"t10k-labels-idx1-ubyte.gz"})


def test_corrupt_mirror_then_good_mirror(env, fake_mnist, serve, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in NAMES:
        (bad / name).write_bytes((fake_mnist / name).read_bytes())
    _corrupt(bad, "train-images-idx3-ubyte.gz")
    bad_url, good_url = serve(bad), serve(fake_mnist)
    ds = load_dataset("mnist", mirrors=[bad_url, good_url], timeout=TIMEOUT)
    assert len(ds.train) == 24
    served = (fake_mnist / "train-images-idx3-ubyte.gz").read_bytes()
    assert (env / "train-images-idx3-ubyte.gz").read_bytes() == served
    assert bad_url in ds.source and good_url in ds.source


def test_missing_on_server_reports_http_status(env, fake_mnist, serve, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    url = serve(empty)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: HTTP 404"):
        locate_mnist(mirrors=url, timeout=TIMEOUT)


def test_offline_message_names_files_and_folder(env, refused_url):
    with pytest.raises(DataError) as e:
        load_dataset("mnist", mirrors=[refused_url], timeout=TIMEOUT)
    msg = str(e.value)
    assert f"{refused_url}: connection refused" in msg
    assert f"put {', '.join(NAMES)} (the original MNIST files) into {env}" in msg
    assert "\n" not in msg
    assert not env.exists() or _leftovers(env) == []


def test_only_missing_files_are_downloaded(env, fake_mnist, serve, refused_url):
    env.mkdir(parents=True)
    for name in NAMES[:3]:
        (env / name).write_bytes((fake_mnist / name).read_bytes())
    with pytest.raises(DataError) as e:
        load_dataset("mnist", mirrors=[refused_url], timeout=TIMEOUT)
    assert f"put {NAMES[3]} (the original MNIST files) into {env}" in str(e.value)
    ds = load_dataset("mnist", mirrors=[serve(fake_mnist)], timeout=TIMEOUT)
    assert len(ds.test) == 6


def test_download_off_or_no_mirrors(env, monkeypatch):
    with pytest.raises(DataError, match=f"downloading is off: put {NAMES[0]}"):
        load_dataset("mnist", download=False)
    monkeypatch.setenv("XNET_MNIST_MIRRORS", " ")
    with pytest.raises(DataError, match="no mirrors"):
        load_dataset("mnist")


def test_damaged_cache_file_is_downloaded_again(env, fake_mnist, serve):
    env.mkdir(parents=True)
    for name in NAMES:
        (env / name).write_bytes((fake_mnist / name).read_bytes())
    _corrupt(env, "train-labels-idx1-ubyte.gz")
    ds = load_dataset("mnist", mirrors=[serve(fake_mnist)], timeout=TIMEOUT)
    assert "downloaded" in ds.source
    assert mnist_mod.md5_of(env / "train-labels-idx1-ubyte.gz") == mnist_mod.MNIST_MD5[
        "train-labels-idx1-ubyte.gz"
    ]


def test_real_files_download(mnist_dir, env, serve):
    files, source = locate_mnist(mirrors=[serve(mnist_dir)], timeout=TIMEOUT)
    assert source.startswith("mnist downloaded from http://127.0.0.1:")
    assert sorted(p.name for p in files.values()) == sorted(NAMES)
    for name in NAMES:
        assert mnist_mod.md5_of(env / name) == mnist_mod.MNIST_MD5[name]
