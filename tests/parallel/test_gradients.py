"""The flat gradient buffer (in this process: a stand-in sum plays the other ranks)."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.nn import Dense, ReLU, Sequential, build_on
from xnet.optim import SGD, Adam
from xnet.parallel.gradients import GradientBuffer, loss_reduction


def _model(backend, dtype="float32"):
    with build_on(backend, dtype):
        return Sequential(Dense(3, 4), ReLU(), Dense(4, 2))


def _as_if_two_ranks(other, backend):
    """reduce_sum as MPI would give it with a second rank holding `other` (a host array)."""

    def reduce_sum(flat):
        backend.copy_into(flat, flat + backend.asarray(other, flat.dtype))

    return reduce_sum


def _groups(model):
    """Two param groups (the first layer at a tenth of the rate): the optimizer keeps two flat buffers."""
    first, last = model.layers[0].parameters(), model.layers[2].parameters()
    return [{"params": first, "lr": 0.01}, {"params": last}]


@pytest.mark.parametrize("groups", [False, True])
def test_the_optimizers_gradients_live_in_one_buffer_and_keep_their_values(backend, groups):
    model = _model(backend)
    params = model.parameters()
    opt = SGD(_groups(model) if groups else params, lr=0.1)
    for i, p in enumerate(params):
        p.grad += float(i + 1)
    buf = GradientBuffer(opt, backend)
    flat = backend.to_numpy(buf.flat)
    assert flat.shape == (4 * 3 + 4 + 4 * 2 + 2 + 2,)  # 26 gradients, the stop and the checkpoint flags
    assert sorted(flat[:-2]) == sorted(np.concatenate([np.full(p.size, float(i + 1)) for i, p in enumerate(params)]))
    before = backend.to_numpy(buf.flat).copy()
    params[2].grad += 10.0  # a layer adding into its gradient writes the buffer
    assert (backend.to_numpy(buf.flat) - before).sum() == 10.0 * params[2].size
    opt.zero_grad()  # cleared (Parameter.clear_grad): their zeros are written before the all-reduce reads the buffer
    seen = []
    buf.all_reduce(1.0, False, lambda flat: seen.append(backend.to_numpy(flat).copy()))
    assert not seen[0][:-2].any()


def test_all_reduce_averages_the_ranks_gradients_and_shares_a_stop_request(backend):
    model = _model(backend)
    params = model.parameters()
    opt = Adam(params, lr=0.01)
    buf = GradientBuffer(opt, backend)
    for p in params:
        p.grad += 2.0
    other = np.full(buf.count + 2, 4.0)  # the other rank's gradients 4.0, times its weight 0.5
    other[:-2] *= 0.5
    other[-2:] = 0.0  # it was not asked to stop, nor is its checkpoint due
    assert buf.all_reduce(0.5, False, _as_if_two_ranks(other, backend)) == (False, False)
    for p in params:
        np.testing.assert_array_equal(backend.to_numpy(p.grad), np.full(p.shape, 3.0))  # mean of 2 and 4
    other[-2] = 1.0  # now it was asked to stop
    assert buf.all_reduce(1.0, False, _as_if_two_ranks(other, backend)) == (True, False)
    other[-2:] = [0.0, 1.0]  # its checkpoint is due (on its clock), and this rank's is not
    assert buf.all_reduce(1.0, False, _as_if_two_ranks(other, backend)) == (False, True)
    other[-2:] = 0.0  # this rank's requests count as much
    assert buf.all_reduce(1.0, True, _as_if_two_ranks(other, backend), checkpoint=True) == (True, True)


def test_gradients_given_new_arrays_are_put_back_with_their_values(backend):
    model = _model(backend)
    opt = SGD(model.parameters(), lr=0.1)
    buf = GradientBuffer(opt, backend)
    model.load_state_dict(model.state_dict())  # gives every parameter new arrays
    p = model.parameters()[0]
    p.grad += 5.0
    buf.all_reduce(1.0, False, lambda flat: None)
    assert backend.to_numpy(buf.flat).sum() == 5.0 * p.size
    p.grad += 1.0  # bound to the buffer again
    assert backend.to_numpy(buf.flat).sum() == 6.0 * p.size


def test_the_buffer_refuses_mixed_dtypes(backend):
    mixed = _model(backend).parameters()[:1] + _model(backend, "float64").parameters()[:1]
    with pytest.raises(ValueError, match=r"one dtype expected, got \['float32', 'float64'\]"):
        GradientBuffer(SGD(mixed, lr=0.1), backend)


def test_place_gradients_refuses_a_buffer_of_the_wrong_size(backend):
    opt = SGD(_model(backend).parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"buffer must have shape \(26,\), got \(5,\)"):
        opt.place_gradients(backend.zeros((5,), "float32"))


def test_losses_average_unless_they_say_they_sum():
    class Summed:
        reduction = "sum"

    assert loss_reduction(object()) == "mean"
    assert loss_reduction(Summed()) == "sum"
