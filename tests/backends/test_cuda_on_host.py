"""The host model of cupy.ElementwiseKernel (cuda_on_host.py) keeps CuPy's rules and refuses what it does not model."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from cuda_on_host import ElementwiseKernel, compiler

pytestmark = pytest.mark.skipif(compiler() is None, reason="no C++ compiler to run the CUDA source on the host")


def test_outputs_are_updated_in_place_and_returned():
    k = ElementwiseKernel("T x, T s", "T y, T z", "y += x * s; z = (T)i;")
    x, y, z = np.arange(4, dtype=np.float32), np.ones(4, np.float32), np.empty(4, np.float32)
    got = k(x, 2.0, y, z)
    assert got[0] is y and got[1] is z
    np.testing.assert_array_equal(y, [1, 3, 5, 7])
    np.testing.assert_array_equal(z, [0, 1, 2, 3])  # `i` is the C-order index


def test_a_scalar_is_stored_into_its_type_as_numpy_assignment_does():
    k = ElementwiseKernel("T s", "T y", "y = s;")
    y = np.empty(1, np.float32)
    k(0.1, y)
    assert y[0] == np.float32(0.1)  # rounded to the placeholder's float32, as CuPy's CScalar does
    out = np.empty(1, np.uint64)
    ElementwiseKernel("uint64 s", "uint64 y", "y = s;")(2**64 - 1, out)
    assert int(out[0]) == 2**64 - 1


def test_outputs_bind_placeholders_before_inputs():
    k = ElementwiseKernel("T x", "T y", "y = x;")
    with pytest.raises(TypeError, match="Type is mismatched. x float64 float32"):
        k(np.zeros(2), np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="Type is mismatched"):
        ElementwiseKernel("float32 x", "float32 y", "y = x;")(np.zeros(2), np.zeros(2, np.float32))


def test_raw_arrays_are_indexed_by_hand_and_inputs_are_const():
    row_sums = "s = 0; for (long long k = 0; k < K; ++k) s += z[i * K + k];"
    k = ElementwiseKernel("raw T z, int64 K", "T s", row_sums)
    z = np.arange(6, dtype=np.float64)
    np.testing.assert_array_equal(k(z, 3, np.empty(2)), [3, 12])
    writes_input = ElementwiseKernel("raw T z", "T y", "z[i] = 1; y = 0;")
    with pytest.raises(subprocess.CalledProcessError):  # CuPy declares inputs const: nvcc refuses it too
        writes_input(np.zeros(2), np.zeros(2))


@pytest.mark.parametrize(
    ("make", "args"),
    [
        (lambda: ElementwiseKernel("T x", "T y", "y = x;"), (np.zeros(3), np.zeros((3, 1)))),  # broadcasting
        (lambda: ElementwiseKernel("T x", "T y", "y = x;"), (np.zeros((4, 2))[:, 0], np.zeros(4))),  # strided
        (lambda: ElementwiseKernel("T x", "T y", "y = x;"), (np.zeros(3),)),  # an omitted output
        (lambda: ElementwiseKernel("T x", "T y", "y = x;", options=("--use_fast_math",)), ()),
        (lambda: ElementwiseKernel("T x", "T y", "y = x[_ind.get()];"), ()),
        (lambda: ElementwiseKernel("float16 x", "float16 y", "y = x;"), ()),
    ],
    ids=["broadcast", "strided", "omitted output", "unknown option", "_ind", "float16"],
)
def test_what_it_does_not_model_is_refused(make, args):
    with pytest.raises(NotImplementedError):
        make()(*args)
