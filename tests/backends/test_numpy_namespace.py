"""The NumPy backend's namespace: numpy's own answers, bit for bit, from its direct sum, take and argmax."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.backends import get_backend
from xnet.backends.numpy_namespace import xp

rng = np.random.default_rng(0)
FLOATS = rng.standard_normal((5, 7, 3)).astype(np.float32) * 1e3


def same(a, b) -> None:
    assert type(a) is type(b)
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize(
    "x",
    [FLOATS, FLOATS[:, ::2], np.arange(12, dtype=np.int8), np.array([True, False, True]), np.array(3.5),
     np.float32(2.5), [1.5, 2.5], np.array([np.nan, 1.0]), np.zeros((0, 3))],
    ids=["floats", "strided", "int8", "bool", "0-d", "scalar", "list", "nan", "empty"],
)  # fmt: skip
@pytest.mark.parametrize(
    "kw", [{}, {"axis": 0}, {"axis": -1, "keepdims": True}, {"dtype": np.float64}, {"axis": None, "keepdims": True}]
)
def test_sum_is_numpys(x, kw):
    if np.ndim(x) == 0 and kw.get("axis") not in (None,):
        pytest.skip("no axis to reduce")
    same(xp.sum(x, **kw), np.sum(x, **kw))


def test_sum_takes_numpys_other_arguments():
    same(xp.sum(FLOATS, axis=1, where=FLOATS > 0), np.sum(FLOATS, axis=1, where=FLOATS > 0))
    out = np.empty((7, 3), np.float32)
    assert xp.sum(FLOATS, axis=0, out=out) is out
    same(out, np.sum(FLOATS, axis=0))


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_take_is_numpys(axis):
    idx = np.array([2, 0, 1, 1])
    same(xp.take(FLOATS, idx, axis=axis), np.take(FLOATS, idx, axis=axis))
    same(xp.take([3, 4, 5], [2, 0]), np.take([3, 4, 5], [2, 0]))
    with pytest.raises(IndexError):
        xp.take(FLOATS, np.array([99]), axis=0)


@pytest.mark.parametrize("kw", [{}, {"axis": 0}, {"axis": -1}, {"axis": -1, "keepdims": True}])
def test_argmax_is_numpys(kw):
    x = FLOATS.copy()
    x[1, 2, 0] = np.nan  # the first NaN wins, as in numpy
    same(xp.argmax(x, **kw), np.argmax(x, **kw))
    same(xp.argmax([[1, 3], [3, 1]], **kw), np.argmax([[1, 3], [3, 1]], **kw))


def test_everything_else_is_numpys_own():
    assert get_backend("cpu").xp is xp
    assert xp.float32 is np.float32 and xp.matmul is np.matmul and xp.ndarray is np.ndarray
    assert xp.linalg is np.linalg and xp.fft is np.fft  # numpy's lazily loaded parts too
    with pytest.raises(AttributeError):
        xp.no_such_function  # noqa: B018
