"""The compiled gather of uint8 pixel rows: the bits of Normalization.apply on those rows, or absent."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.backends import get_backend
from xnet.backends.cpu_kernels import loader
from xnet.data.prepare import Normalization, fit_normalization

pytestmark = pytest.mark.skipif(loader.kernels() is None, reason=f"compiled CPU kernels off: {loader.reason()}")

RAW = np.random.default_rng(3).integers(0, 256, (50, 1, 6, 5), dtype=np.uint8)
RAW[0] = 0
RAW[1] = 255


@pytest.mark.parametrize("mode", ["unit", "centered", "standard", "none"])
@pytest.mark.parametrize(
    "index",
    [np.array([7, 0, 1, 49, 7], np.int64), np.arange(50, dtype=np.int32)[::-1].copy(), np.array([], np.int64)],
    ids=["repeats", "all-int32", "empty"],
)
def test_the_gathered_batch_has_the_bits_of_normalization_apply(mode, index):
    norm = fit_normalization(mode, RAW)
    got = get_backend("cpu").fused_take_normalized(RAW, index, norm.offset, norm.scale)
    want = norm.apply(RAW, index)
    assert got is not None and got.dtype == np.float32 and got.shape == (len(index), 1, 6, 5)
    assert np.array_equal(got, want)


def test_flat_rows_keep_their_shape():
    flat = RAW.reshape(50, -1)
    got = get_backend("cpu").fused_take_normalized(flat, np.array([2, 3]), 127.5, 255.0)
    assert np.array_equal(got, Normalization("centered", 127.5, 255.0).apply(flat, np.array([2, 3])))


@pytest.mark.parametrize(
    "raw, index",
    [
        (RAW, np.array([0, 50])),  # out of range: left to take, which raises
        (RAW, np.array([-1])),
        (RAW[:, :, ::2], np.array([0])),  # not contiguous
        (RAW.astype(np.float32), np.array([0])),  # not pixels
        (RAW, np.array([0.0, 1.0])),  # not an integer index
    ],
    ids=["past-the-end", "negative", "strided", "float-raw", "float-index"],
)
def test_what_the_kernel_does_not_take_is_left_to_the_reference(raw, index):
    assert get_backend("cpu").fused_take_normalized(raw, index, 0.0, 255.0) is None
