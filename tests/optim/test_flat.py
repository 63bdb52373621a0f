"""Flat buffers: a group's parameters and gradients are views into two arrays, with the same updates."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.backends import Backend
from xnet.nn import BatchNorm1D, Dense, ReLU, Sequential, build_on
from xnet.nn.parameter import Parameter, write_cleared_grads
from xnet.optim import SGD, Adagrad, Adam, AdamW, RMSprop, flat
from xnet.optim.regularizers import L1, L2

CASES = [
    (SGD, {"lr": 0.1}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (Adam, {"lr": 0.01}),
    (Adam, {"lr": 0.01, "weight_decay": 0.1, "clip_value": 0.5}),
    (AdamW, {"lr": 0.01, "weight_decay": 0.1}),
    (RMSprop, {"lr": 0.01, "weight_decay": 0.05, "regularizers": [L1(1e-3)]}),
    (Adagrad, {"lr": 0.1, "regularizers": [L2(1e-2)]}),
]


def model(backend, dtype="float64"):
    with build_on(backend, dtype):
        backend.rng.seed(0)
        return Sequential(Dense(5, 7), BatchNorm1D(7), ReLU(), Dense(7, 3))


def grads(backend, m, step: int) -> None:
    """Put seeded 'gradients' into every parameter, as a backward pass would (in place)."""
    rng = np.random.default_rng(step)
    for p in m.parameters():
        p.grad[...] = backend.asarray(rng.standard_normal(p.shape), m.dtype)


def train(backend, cls, kwargs, flatten: bool, monkeypatch) -> list[np.ndarray]:
    monkeypatch.setattr("xnet.optim.flat_groups.can_flatten", flat.can_flatten if flatten else lambda params: False)
    m = model(backend)
    decay_all = {"decay_all": True} if kwargs.get("weight_decay") and cls is SGD else {}
    groups = [{"params": m.parameters()[:2], **decay_all}, {"params": m.parameters()[2:], "lr_scale": 0.5}]
    opt = cls(groups, **kwargs)
    for step in range(4):
        opt.zero_grad()
        grads(backend, m, step)
        opt.step()
    return [backend.to_numpy(p.data) for p in m.parameters()]


@pytest.mark.parametrize(("cls", "kwargs"), CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_flat_updates_equal_per_parameter_updates(backend, cls, kwargs, monkeypatch):
    per_param = train(backend, cls, kwargs, False, monkeypatch)
    flat_ = train(backend, cls, kwargs, True, monkeypatch)
    for a, b in zip(flat_, per_param, strict=True):
        np.testing.assert_array_equal(a, b)  # elementwise updates: the same operations on every value


def test_parameters_are_views_into_one_buffer(backend):
    m = model(backend)
    opt = Adam(m.parameters(), lr=0.01)
    fg = opt._flat[0]
    assert fg is not None and fg.data.shape == (sum(p.size for p in m.parameters()),)
    fg.data[...] = 2.0
    fg.grad[...] = 3.0
    for p in m.parameters():
        assert np.all(backend.to_numpy(p.data) == 2.0) and np.all(backend.to_numpy(p.grad) == 3.0)
    # the weights that weight decay and regularisers touch lead the buffer
    weights = sum(p.size for p in m.parameters() if p.regularize)
    assert fg.regularized == weights == 5 * 7 + 7 * 3
    opt.zero_grad()  # marks the gradients cleared; the buffer's zeros are written when it is read
    assert all(p.grad_cleared for p in m.parameters())
    write_cleared_grads(m.parameters())  # as the step does before it reads the buffer
    assert not np.any(backend.to_numpy(fg.grad))
    assert not any(p.grad_cleared for p in m.parameters())


def test_values_survive_flattening(backend):
    m = model(backend)
    before = [backend.to_numpy(p.data).copy() for p in m.parameters()]
    Adam(m.parameters(), lr=0.01)
    for a, p in zip(before, m.parameters(), strict=True):
        np.testing.assert_array_equal(backend.to_numpy(p.data), a)


def test_load_state_dict_copies_into_the_views(backend):
    m = model(backend)
    opt = SGD(m.parameters(), lr=0.1)
    state = m.state_dict()
    grads(backend, m, 0)
    opt.step()
    m.load_state_dict(state)
    assert opt._flat[0].intact()  # copied in place: the buffer still holds the parameters
    np.testing.assert_array_equal(backend.to_numpy(m.parameters()[0].data), state["0.weight"])


def test_a_rebound_parameter_is_flattened_again_with_its_state(backend):
    ref_m, m = model(backend), model(backend)
    ref, opt = Adam(ref_m.parameters(), lr=0.01), Adam(m.parameters(), lr=0.01)
    for step in range(3):
        if step == 1:  # as user code might: a new array (a copy of the old values) for one weight
            p = m.parameters()[0]
            p.data = backend.xp.asarray(p.data, copy=True)
        for mm, o in ((ref_m, ref), (m, opt)):
            o.zero_grad()
            grads(backend, mm, step)
            o.step()
    assert opt._flat[0].intact()
    for a, b in zip(m.parameters(), ref_m.parameters(), strict=True):
        np.testing.assert_array_equal(backend.to_numpy(a.data), backend.to_numpy(b.data))


def test_mixed_dtypes_stay_per_parameter():
    a = Parameter(np.zeros((2, 2), np.float32), "a")
    b = Parameter(np.zeros(2, np.float64), "b")
    opt = SGD([a, b], lr=0.1)
    assert opt._flat == [None]
    a.grad[...], b.grad[...] = 1.0, 2.0
    opt.step()
    np.testing.assert_array_equal(a.data, np.float32(-0.1))
    np.testing.assert_array_equal(b.data, -0.2)


def test_the_compiled_update_is_bound_once_and_again_when_the_buffers_change(monkeypatch):
    from xnet.backends import get_backend
    from xnet.backends.cpu_kernels import loader

    backend = get_backend("cpu")
    kernels = loader.kernels()
    if kernels is None:
        pytest.skip(f"compiled CPU kernels off: {loader.reason()}")
    bound = []
    real = kernels.optimizer
    monkeypatch.setattr(kernels, "optimizer", lambda name, arrays: bound.append(arrays[0]) or real(name, arrays))
    ref_m, m = model(backend), model(backend)
    ref, opt = SGD(ref_m.parameters(), lr=0.1, momentum=0.9), SGD(m.parameters(), lr=0.1, momentum=0.9)
    monkeypatch.setattr(ref, "ops", Backend())  # the reference body, no kernel
    for step in range(4):
        if step == 2:  # a new array for one weight: the group is flattened again, into new buffers
            p = m.parameters()[0]
            p.data = p.data.copy()
        for mm, o in ((ref_m, ref), (m, opt)):
            o.zero_grad()
            grads(backend, mm, step)
            o.step()
    assert len(bound) == 2 and bound[0] is not bound[1]  # one binding per buffer, not one per step
    assert bound[1] is opt._flat[0].data
    for a, b in zip(m.parameters(), ref_m.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-14)


def test_the_bound_update_goes_with_its_optimizer(backend):
    import gc
    import weakref

    m = model(backend)
    opt = Adam(m.parameters(), lr=0.01)
    grads(backend, m, 0)
    opt.step()
    buffer = weakref.ref(opt._flat[0].data)
    del opt, m
    gc.collect()
    assert buffer() is None  # nothing (a backend's cache) keeps an optimizer's buffers alive
