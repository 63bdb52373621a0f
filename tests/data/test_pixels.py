"""Pixels: uint8 images normalised per batch give the float32 array's batches bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.data import Augment, DataLoader, Pixels
from xnet.data.prepare import fit_normalization

N, SHAPE = 61, (1, 6, 5)
MODES = ("unit", "centered", "standard", "none")


def raw_images(n: int = N) -> np.ndarray:
    """uint8 images (n, 1, 6, 5) holding 0 and 255 and everything between."""
    raw = np.random.default_rng(7).integers(0, 256, size=(n, *SHAPE), dtype=np.uint8)
    raw[0], raw[1] = 0, 255
    return raw


def pixels_and_floats(mode: str, n: int = N) -> tuple[Pixels, np.ndarray, np.ndarray]:
    raw = raw_images(n)
    norm = fit_normalization(mode, raw)
    return Pixels(raw, norm), norm.apply(raw), np.arange(n) % 10


def served(backend, loader, epochs: int = 2, **eval_kw) -> list[np.ndarray]:
    """Every x batch of `epochs` shuffled epochs (the augment stream reseeded first), then of eval_batches."""
    backend.rng.seed(3)
    out = []
    for _ in range(epochs):
        for xb, yb in loader:
            out += [backend.to_numpy(xb), backend.to_numpy(yb)]
    for xb, yb in loader.eval_batches(**eval_kw):
        out += [backend.to_numpy(xb), backend.to_numpy(yb)]
    return out


def assert_same_batches(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b) > 0
    for u, v in zip(a, b, strict=True):
        assert u.dtype == v.dtype and u.shape == v.shape
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("mode", MODES)
def test_materialize_is_the_normalisations_float32_array(mode):
    pixels, floats, _ = pixels_and_floats(mode)
    got = pixels.materialize()
    assert got.dtype == np.float32 and got.shape == floats.shape == pixels.shape
    np.testing.assert_array_equal(got, floats)
    assert len(pixels) == N and pixels.dtype == np.float32
    np.testing.assert_array_equal(pixels[3:9].materialize(), floats[3:9])
    np.testing.assert_array_equal(pixels.reshape(N, 30).materialize(), floats.reshape(N, 30))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("augment", [False, True], ids=["plain", "augment"])
def test_shuffled_and_eval_batches_equal_the_float_arrays(backend, dtype, mode, augment):
    pixels, floats, y = pixels_and_floats(mode)
    aug = Augment(backend=backend) if augment else None
    kw = dict(batch_size=8, backend=backend, seed=5, drop_last="single", augment=aug, dtype=dtype)
    from_pixels = DataLoader(pixels, y, **kw)
    from_floats = DataLoader(floats, y, **kw)
    assert "uint8" in str(from_pixels.x.dtype)  # the device holds the raw rows, not floats
    assert_same_batches(served(backend, from_pixels), served(backend, from_floats))
    rows = dict(batch_size=5, rows=(4, 23))
    assert_same_batches(served(backend, from_pixels, 0, **rows), served(backend, from_floats, 0, **rows))
    got, want = from_pixels.inputs(2, 9), from_floats.inputs(2, 9)
    np.testing.assert_array_equal(backend.to_numpy(got), backend.to_numpy(want))


@pytest.mark.parametrize("mode", ["unit", "standard"])
def test_sharded_and_unshuffled_batches_equal_the_float_arrays(backend, dtype, mode):
    pixels, floats, y = pixels_and_floats(mode, n=64)
    for shuffle in (True, False):
        kw = dict(batch_size=16, backend=backend, seed=2, shuffle=shuffle, dtype=dtype)
        a, b = DataLoader(pixels, y, **kw), DataLoader(floats, y, **kw)
        for rank in (0, 1):
            assert_same_batches(served(backend, a.sharded(rank, 2), 1), served(backend, b.sharded(rank, 2), 1))


def test_flat_pixels_serve_flat_batches(backend):
    pixels, floats, y = pixels_and_floats("centered")
    a = DataLoader(pixels.reshape(N, 30), y, 10, backend, seed=1)
    b = DataLoader(floats.reshape(N, 30), y, 10, backend, seed=1)
    assert_same_batches(served(backend, a, 1), served(backend, b, 1))


def test_pixels_must_be_uint8_and_index_rows_by_slice():
    norm = fit_normalization("unit", raw_images())
    with pytest.raises(ValueError, match="uint8"):
        Pixels(np.zeros((3, 4), dtype=np.float32), norm)
    with pytest.raises(TypeError, match="slice"):
        Pixels(raw_images(), norm)[[0, 1]]


@pytest.mark.parametrize("mode", MODES)
def test_shuffled_float32_batches_come_from_the_backends_fused_gather_when_it_has_one(monkeypatch, mode):
    from xnet.backends import get_backend

    backend = get_backend("cpu")
    pixels, floats, y = pixels_and_floats(mode)
    taken = []
    fused = backend.fused_take_normalized

    def spy(raw, rows, offset, scale):
        out = fused(raw, rows, offset, scale)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(backend, "fused_take_normalized", spy)
    kw = dict(batch_size=8, backend=backend, seed=5, dtype="float32")
    got = served(backend, DataLoader(pixels, y, **kw), epochs=1)
    monkeypatch.setattr(backend, "fused_take_normalized", lambda *args: None)  # the reference gather
    assert_same_batches(got, served(backend, DataLoader(pixels, y, **kw), epochs=1))
    from xnet.backends.cpu_kernels import loader

    # every shuffled batch asked the backend; with the compiled kernels here, each one took it
    assert len(taken) == -(-N // 8) and all(taken) == (loader.kernels() is not None)
