"""DataLoader (device batches, seeded shuffling) and Augment (device shifts and rotations)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xnet.backends import get_backend
from xnet.data import Augment, DataLoader

N = 250


def make_xy(n=N):
    """x rows carry their own index (x[i] = i), y = i % 10, so batches can be traced back."""
    x = np.repeat(np.arange(n, dtype=np.float32)[:, None], 3, axis=1)
    return x, np.arange(n) % 10


def epoch_ids(backend, loader):
    """The sample indices of one epoch, batch by batch, checking x and y stay paired."""
    out = []
    for xb, yb in loader:
        xs, ys = backend.to_numpy(xb), backend.to_numpy(yb)
        ids = xs[:, 0].astype(np.int64)
        np.testing.assert_array_equal(ys, ids % 10)
        np.testing.assert_array_equal(xs, np.repeat(xs[:, :1], 3, axis=1))
        out.append(ids)
    return out


def test_every_sample_once_per_epoch(backend):
    loader = DataLoader(*make_xy(), 7, backend, seed=1)
    for _ in range(2):
        ids = np.concatenate(epoch_ids(backend, loader))
        assert sorted(ids.tolist()) == list(range(N))
        assert ids.tolist() != list(range(N))  # shuffled


@pytest.mark.parametrize(
    "batch_size,drop_last,sizes",
    [
        (1, False, [1] * 250),
        (7, False, [7] * 35 + [5]),
        (7, True, [7] * 35),
        (100, False, [100, 100, 50]),
        (100, True, [100, 100]),
        (None, False, [250]),
        ("full", False, [250]),
        (1000, False, [250]),
        (1000, True, []),
    ],
)
def test_batch_counts(backend, batch_size, drop_last, sizes):
    loader = DataLoader(*make_xy(), batch_size, backend, drop_last=drop_last)
    assert len(loader) == len(sizes)
    assert [len(b) for b in epoch_ids(backend, loader)] == sizes


def test_reproducible_and_different_across_epochs_and_seeds(backend):
    def run(seed, epochs=3):
        loader = DataLoader(*make_xy(), 32, backend, seed=seed)
        return [np.concatenate(epoch_ids(backend, loader)).tolist() for _ in range(epochs)]

    a, b = run(5), run(5)
    assert a == b
    assert a[0] != a[1] != a[2]
    assert run(6)[0] != a[0]
    # set_epoch replays an epoch (resuming a run)
    loader = DataLoader(*make_xy(), 32, backend, seed=5)
    loader.set_epoch(2)
    assert np.concatenate(epoch_ids(backend, loader)).tolist() == a[2]
    assert loader.epoch == 3


def test_same_batches_on_every_backend(backend):
    ref = DataLoader(*make_xy(), 16, get_backend("cpu"), seed=3)
    dev = DataLoader(*make_xy(), 16, backend, seed=3)
    for (xr, yr), (xd, yd) in zip(ref, dev, strict=True):
        np.testing.assert_array_equal(backend.to_numpy(xd), xr)
        np.testing.assert_array_equal(backend.to_numpy(yd), yr)


def test_batches_live_on_the_device(backend):
    loader = DataLoader(*make_xy(), 64, backend)
    xp = backend.xp
    for xb, yb in [*loader, *loader.eval_batches()]:
        assert xb.device == backend.device and yb.device == backend.device
        assert xb.dtype == xp.float32 and yb.dtype == xp.int64
        if backend.name == "strict":
            assert isinstance(xb, xp._array_object.Array)
            assert xb.device == xp.Device("device1")
    assert loader.x.device == backend.device  # the data was moved once, in the constructor


def test_no_shuffle_and_eval_batches_keep_order(backend):
    loader = DataLoader(*make_xy(), 60, backend, shuffle=False)
    assert np.concatenate(epoch_ids(backend, loader)).tolist() == list(range(N))
    shuffled = DataLoader(*make_xy(), 60, backend, drop_last=True)
    ids = epoch_ids(backend, _Eval(shuffled, 100))
    assert [len(i) for i in ids] == [100, 100, 50]
    assert np.concatenate(ids).tolist() == list(range(N))


class _Eval:
    """Adapts eval_batches to the iteration protocol epoch_ids expects."""

    def __init__(self, loader, size):
        self.loader, self.size = loader, size

    def __iter__(self):
        return self.loader.eval_batches(self.size)


def test_dtypes_unlabelled_and_regression_targets(backend):
    x, _ = make_xy(10)
    loader = DataLoader(x, None, 4, backend, dtype="float64")
    batches = list(loader)
    assert all(yb is None for _, yb in batches) and batches[0][0].dtype == backend.xp.float64
    y = np.linspace(0, 1, 10, dtype=np.float64)[:, None]
    xb, yb = next(iter(DataLoader(x, y, 10, backend, shuffle=False)))
    assert yb.dtype == backend.xp.float32 and yb.shape == (10, 1)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "7", True, "all"])
def test_bad_batch_size(backend, bad):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(*make_xy(), bad, backend)


def test_length_mismatch(backend):
    x, y = make_xy()
    with pytest.raises(ValueError, match="x has 250 samples but y has 249"):
        DataLoader(x, y[:-1], 8, backend)


# -- augmentation -------------------------------------------------------------------------------


def shifted(x, dy, dx, fill):
    """Reference integer shift of one (C, H, W) image: out[i, j] = x[i - dy, j - dx] or fill."""
    C, H, W = x.shape
    out = np.full_like(x, fill)
    for i in range(H):
        for j in range(W):
            if 0 <= i - dy < H and 0 <= j - dx < W:
                out[:, i, j] = x[:, i - dy, j - dx]
    return out


def rotated_shifted(img, angle, dy, dx, fill):
    """Reference bilinear resampling of one (C, H, W) image, one output pixel at a time."""
    C, H, W = img.shape
    cy, cx = (H - 1) / 2, (W - 1) / 2
    out = np.zeros_like(img, dtype=np.float64)
    c, s = math.cos(angle), math.sin(angle)
    for i in range(H):
        for j in range(W):
            py, px = i - cy - dy, j - cx - dx
            sy, sx = c * py + s * px + cy, c * px - s * py + cx
            y0, x0 = math.floor(sy), math.floor(sx)
            for yy, wy in ((y0, 1 - (sy - y0)), (y0 + 1, sy - y0)):
                for xx, wx in ((x0, 1 - (sx - x0)), (x0 + 1, sx - x0)):
                    inside = 0 <= yy < H and 0 <= xx < W
                    out[:, i, j] += wy * wx * (img[:, yy, xx] if inside else fill)
    return out


def draws(backend, seed, n, max_shift, max_deg):
    """The shifts and angles Augment draws (from the "augment" stream) after backend.rng.seed(seed)."""
    backend.rng.seed(seed)
    stream = backend.rng.stream("augment")
    sh = backend.to_numpy(stream.integers(-max_shift, max_shift + 1, (n, 2)))
    rad = math.radians(max_deg)
    ang = backend.to_numpy(stream.uniform((n, 1), -rad, rad, dtype="float32"))
    return sh, ang[:, 0]


def test_augment_pure_shifts(backend):
    x = np.random.default_rng(0).random((6, 2, 5, 7)).astype(np.float32)
    sh, _ = draws(backend, 11, 6, 2, 0)
    backend.rng.seed(11)
    out = backend.to_numpy(Augment(2, 0, fill=0.0)(backend.asarray(x), backend))
    assert out.shape == x.shape and len({tuple(s) for s in sh.tolist()}) > 1
    for n in range(6):
        np.testing.assert_allclose(out[n], shifted(x[n], sh[n, 0], sh[n, 1], 0.0), atol=1e-6)


def test_augment_rotation_against_reference(backend):
    x = np.random.default_rng(1).random((4, 1, 6, 5)).astype(np.float32)
    sh, ang = draws(backend, 3, 4, 1, 20)
    backend.rng.seed(3)
    aug = Augment(max_shift=1, max_rotate_degrees=20)  # fill=None: each image's minimum
    out = backend.to_numpy(aug(backend.asarray(x), backend))
    assert np.abs(ang).max() > 0.05
    for n in range(4):
        ref = rotated_shifted(x[n], float(ang[n]), sh[n, 0], sh[n, 1], float(x[n].min()))
        np.testing.assert_allclose(out[n], ref, atol=1e-5)


def test_augment_rotation_moves_a_dot_on_a_circle(backend):
    x = np.zeros((8, 1, 15, 15), np.float32)
    x[:, 0, 3, 7] = 1.0  # 4 pixels above the centre (7, 7)
    _, ang = draws(backend, 9, 8, 0, 30)
    backend.rng.seed(9)
    out = backend.to_numpy(Augment(0, 30, fill=0.0)(backend.asarray(x), backend))
    ii, jj = np.mgrid[0:15, 0:15]
    for n in range(8):
        m = out[n, 0]
        cy, cx = (m * ii).sum() / m.sum() - 7, (m * jj).sum() / m.sum() - 7
        assert math.hypot(cy, cx) == pytest.approx(4, abs=0.3)
        assert abs(math.atan2(cx, -cy)) == pytest.approx(abs(float(ang[n])), abs=0.08)


def test_augment_in_loader_on_device(backend):
    x = np.random.default_rng(2).random((20, 1, 28, 28)).astype(np.float32)
    loader = DataLoader(x, np.arange(20), 8, backend, augment=Augment(2, 10), seed=0)
    batches = 0
    for xb, _ in loader:
        assert xb.shape[1:] == (1, 28, 28) and xb.device == backend.device
        batches += 1
    assert batches == 3
    flat = DataLoader(x.reshape(20, 784), None, 20, backend, augment=Augment(2, 10))
    xb, _ = next(iter(flat))
    assert xb.shape == (20, 784)
    assert not np.allclose(backend.to_numpy(xb), x.reshape(20, 784)[backend.to_numpy(flat.permutation(0))])
    # evaluation batches are never augmented
    ev, _ = next(flat.eval_batches())
    np.testing.assert_array_equal(backend.to_numpy(ev), x.reshape(20, 784))


def test_augment_checks(backend):
    with pytest.raises(ValueError, match="max_shift"):
        Augment(-1)
    with pytest.raises(ValueError, match="max_rotate_degrees"):
        Augment(1, 200)
    with pytest.raises(ValueError, match=r"expected an image batch \(N, C, H, W\)"):
        Augment()(backend.zeros((2, 3, 4)), backend)
    with pytest.raises(TypeError, match="needs a backend"):
        Augment()(backend.zeros((2, 1, 4, 4)))
