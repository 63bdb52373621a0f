"""The flat gradient buffer (in this process: a stand-in sum plays the other ranks)."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.nn import Dense, ReLU, Sequential, build_on
from xnet.parallel.gradients import GradientBuffer, loss_reduction


def _model(backend, dtype="float32"):
    with build_on(backend, dtype):
        return Sequential(Dense(3, 4), ReLU(), Dense(4, 2))


def _as_if_two_ranks(other, backend):
    """reduce_sum as MPI would give it with a second rank holding `other` (a host array)."""

    def reduce_sum(flat):
        backend.copy_into(flat, flat + backend.asarray(other, flat.dtype))

    return reduce_sum


def test_gradients_become_views_of_one_buffer_and_keep_their_values(backend):
    model = _model(backend)
    params = model.parameters()
    for i, p in enumerate(params):
        p.grad += float(i + 1)
    buf = GradientBuffer(params, backend)
    flat = backend.to_numpy(buf.flat)
    assert flat.shape == (4 * 3 + 4 + 2 * 4 + 2 + 1,)
    expected = np.concatenate([np.full(p.size, float(i + 1)) for i, p in enumerate(params)] + [[0.0]])
    np.testing.assert_array_equal(flat, expected)
    params[2].grad += 10.0  # a layer adding into its gradient writes the buffer
    assert backend.to_numpy(buf.flat)[16] == 13.0


def test_all_reduce_averages_the_ranks_gradients_and_shares_a_stop_request(backend):
    model = _model(backend)
    params = model.parameters()
    buf = GradientBuffer(params, backend)
    for p in params:
        p.grad += 2.0
    other = np.full(buf.count + 1, 4.0)  # the other rank's gradients 4.0, times its weight 0.5
    other[:-1] *= 0.5
    other[-1] = 0.0  # it was not asked to stop
    assert buf.all_reduce(0.5, False, _as_if_two_ranks(other, backend)) is False
    for p in params:
        np.testing.assert_array_equal(backend.to_numpy(p.grad), np.full(p.shape, 3.0))  # mean of 2 and 4
    other[-1] = 1.0  # now it was
    assert buf.all_reduce(1.0, False, _as_if_two_ranks(other, backend)) is True


def test_a_replaced_gradient_is_copied_back_and_rebound(backend):
    model = _model(backend)
    buf = GradientBuffer(model.parameters(), backend)
    state = model.state_dict()
    model.load_state_dict(state)  # gives every parameter a new gradient array
    p = model.parameters()[0]
    p.grad += 5.0
    buf.rebind()
    assert p.grad is buf.views[0]
    np.testing.assert_array_equal(backend.to_numpy(buf.flat)[: p.size], np.full(p.size, 5.0))


def test_the_buffer_refuses_no_parameters_or_mixed_dtypes(backend):
    with pytest.raises(ValueError, match="params is empty"):
        GradientBuffer([], backend)
    mixed = _model(backend).parameters()[:1] + _model(backend, "float64").parameters()[:1]
    with pytest.raises(ValueError, match=r"one dtype expected, got \['float32', 'float64'\]"):
        GradientBuffer(mixed, backend)


def test_losses_average_unless_they_say_they_sum():
    class Summed:
        reduction = "sum"

    assert loss_reduction(object()) == "mean"
    assert loss_reduction(Summed()) == "sum"
