"""Backend.asarray / xnet.asarray take other libraries' arrays through DLPack, sharing memory where allowed."""

from __future__ import annotations

import numpy as np
import pytest

import xnet
from xnet.backends import get_backend


def _strict_array(values: np.ndarray):
    import array_api_strict as s

    return s.asarray(values, device=s.Device("device1"))


def test_numpy_backend_shares_a_strict_arrays_memory():
    x = _strict_array(np.arange(6.0).reshape(2, 3))
    out = get_backend("cpu").asarray(x)
    assert isinstance(out, np.ndarray) and out.shape == (2, 3)
    np.testing.assert_array_equal(out, np.arange(6.0).reshape(2, 3))
    assert np.shares_memory(out, x._array)  # DLPack wrapped it: no host copy


def test_numpy_backend_casts_when_asked():
    x = _strict_array(np.arange(3.0))
    out = get_backend("cpu").asarray(x, "float32")
    assert out.dtype == np.float32 and not np.shares_memory(out, x._array)
    np.testing.assert_array_equal(out, [0, 1, 2])


def test_strict_backend_takes_numpy_and_strict_arrays_onto_its_device():
    b = get_backend("strict")
    from_numpy = b.asarray(np.arange(4.0))
    assert from_numpy.device == b.device
    other = _strict_array(np.arange(4.0))  # strict, on the same device already
    assert b.asarray(other) is other
    np.testing.assert_array_equal(b.to_numpy(from_numpy), np.arange(4.0))


def test_xnet_asarray_defaults_to_the_cpu():
    x = _strict_array(np.ones((2, 2), np.float32))
    out = xnet.asarray(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and np.shares_memory(out, x._array)


def test_plain_values_are_unchanged():
    assert get_backend("cpu").asarray([1, 2], "float64").tolist() == [1.0, 2.0]
    assert float(get_backend("cpu").asarray(np.float32(2.5))) == 2.5


def test_torch_tensors_are_shared_not_copied():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (the bench environment has it)")
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    out = xnet.asarray(t)
    out[0, 0] = 42.0
    assert t[0, 0].item() == 42.0  # one memory: the write shows in the tensor
    strict = get_backend("strict").asarray(t)
    np.testing.assert_array_equal(get_backend("strict").to_numpy(strict), out)


def test_a_tensor_that_needs_grad_is_one_clear_error():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (the bench environment has it)")
    with pytest.raises(TypeError, match=r"Tensor through DLPack.*detach\(\)"):
        xnet.asarray(torch.ones(3, requires_grad=True))
