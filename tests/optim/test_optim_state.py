"""Optimizer state_dict: 5 steps + save + restore into fresh copies + 5 steps == 10 steps, exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xnet.backends import get_backend
from xnet.nn.parameter import Parameter
from xnet.optim import L1, L2, OPTIMIZERS, SGD, Adam, CosineSchedule, get_optimizer
from xnet.train.checkpoint import load_checkpoint, save_checkpoint

RNG = np.random.default_rng(7)
W0 = RNG.normal(size=(4, 3))
B0 = RNG.normal(size=(3,))
NOISE = [(RNG.normal(size=(4, 3)), RNG.normal(size=(3,))) for _ in range(10)]


def fresh(backend, values=(W0, B0)):
    w = Parameter(backend.asarray(np.array(values[0], copy=True), "float64"), "weight")
    b = Parameter(backend.asarray(np.array(values[1], copy=True), "float64"), "bias", regularize=False)
    return [w, b]


def run(backend, opt, params, steps, sched):
    """Steps start..start+steps-1; gradients depend on the weights, so any state error shows."""
    for _ in range(steps):
        k = opt.t
        opt.lr = sched.lr_at(k)
        opt.zero_grad()
        for p, n in zip(params, NOISE[k], strict=True):
            p.grad += p.data * 0.5 + backend.asarray(n, "float64")
        opt.step()


CONFIGS = [(name, {}) for name in OPTIMIZERS] + [
    ("adam", {"bias_correction": False}),
    ("adamw", {"weight_decay": 0.1, "regularizers": [L1(0.01)], "clip_value": 0.5}),
    ("momentum", {"weight_decay": 0.01, "regularizers": [L2(0.1)], "clip_norm": 0.3}),
    ("adadelta", {"weight_decay": 0.01, "clip_value": 0.5}),
    ("nadam", {"weight_decay": 0.1, "decoupled_weight_decay": True, "regularizers": [L1(0.01)], "clip_norm": 0.3}),
    ("radam", {"weight_decay": 0.1, "regularizers": [L2(0.1)]}),
    ("lion", {"weight_decay": 0.1, "clip_norm": 0.3}),
    ("adamax", {"weight_decay": 0.01, "regularizers": [L2(0.1)]}),
]


def build(name, params, kw):
    if name == "rmsprop":  # two groups, the second at half the lr
        return get_optimizer(name, [{"params": params[:1]}, {"params": params[1:], "lr": 0.0005}])
    return get_optimizer(name, params, **kw)


@pytest.mark.parametrize("name,kw", CONFIGS, ids=[n + ("-" + "-".join(k) if k else "") for n, k in CONFIGS])
def test_resume_is_exact(backend, tmp_path, name, kw):
    sched = CosineSchedule(0.05, total_steps=10, warmup_steps=2)
    params = fresh(backend)
    opt = build(name, params, kw)
    run(backend, opt, params, 5, sched)
    state = opt.state_dict()
    saved_params = [np.array(backend.to_numpy(p.data)) for p in params]  # numpy: no alias
    run(backend, opt, params, 5, sched)  # the uninterrupted run (must not change `state`)
    # through a real checkpoint file: arrays in .npz, the rest in the JSON header
    save_checkpoint(tmp_path / "c.npz", {"optimizer": state})
    loaded = load_checkpoint(tmp_path / "c.npz")["optimizer"]

    params2 = fresh(backend, saved_params)
    opt2 = build(name, params2, kw)
    opt2.load_state_dict(loaded)
    assert opt2.t == 5
    run(backend, opt2, params2, 5, sched)
    for p, q in zip(params, params2, strict=True):
        np.testing.assert_array_equal(backend.to_numpy(q.data), backend.to_numpy(p.data))
    assert opt2.lr == opt.lr and opt2.t == 10


def test_state_dict_format(backend):
    params = fresh(backend)
    opt = Adam(params, lr=0.01)
    run(backend, opt, params, 2, CosineSchedule(0.01, 10))
    state = opt.state_dict()
    assert state["type"] == "adam" and state["t"] == 2
    assert len(state["state"]) == 2 and set(state["state"][0]) == {"m", "v"}
    for s, p in zip(state["state"], params, strict=True):
        for a in s.values():
            assert isinstance(a, np.ndarray) and a.shape == p.shape and a.dtype == np.float64
    no_arrays = {k: v for k, v in state.items() if k != "state"}
    assert json.loads(json.dumps(no_arrays)) == no_arrays  # the rest is plain JSON


def test_plain_sgd_has_no_arrays(backend):
    opt = SGD(fresh(backend), lr=0.1)
    assert opt.state_dict()["state"] == [{}, {}]


def test_load_restores_hyperparameters(backend):
    params = fresh(backend)
    opt = Adam(params, lr=0.01, beta1=0.5)
    state = opt.state_dict()
    opt2 = Adam(fresh(backend), lr=0.02)
    opt2.load_state_dict(state)
    assert opt2.param_groups[0]["beta1"] == 0.5 and opt2.lr == 0.01


def test_load_across_backends(backend):
    """Saved on NumPy, resumed on the fixture's backend: same trajectory."""
    sched = CosineSchedule(0.05, total_steps=10)
    host = get_backend("cpu")
    p_ref = fresh(host)
    ref = Adam(p_ref, lr=0.05)
    run(host, ref, p_ref, 5, sched)
    state = ref.state_dict()
    params = fresh(backend, [p.data for p in p_ref])  # fresh() copies
    opt = Adam(params, lr=0.05)
    opt.load_state_dict(state)
    run(host, ref, p_ref, 5, sched)
    run(backend, opt, params, 5, sched)
    for p, q in zip(p_ref, params, strict=True):
        np.testing.assert_allclose(backend.to_numpy(q.data), p.data, rtol=1e-14)


def test_load_mismatch_raises(backend):
    params = fresh(backend)
    state = Adam(params, lr=0.01).state_dict()
    with pytest.raises(ValueError, match="state is for optimizer 'adam', not 'sgd'"):
        SGD(fresh(backend), lr=0.1, momentum=0.9).load_state_dict(state)
    with pytest.raises(ValueError, match="2 parameters saved, 1 here"):
        Adam(fresh(backend)[:1]).load_state_dict(state)
    other = [Parameter(backend.asarray(np.zeros((2, 2)), "float64")), params[1]]
    with pytest.raises(ValueError, match=r"expected \(2, 2\), got \(4, 3\)"):
        Adam(other).load_state_dict(state)


def test_load_after_parameters_moved(backend):
    """Optimizer built on NumPy, parameters then moved (as model.to does): load follows them."""
    host = get_backend("cpu")
    params = fresh(host)
    opt = Adam(params, lr=0.05)
    run(host, opt, params, 3, CosineSchedule(0.05, 10))
    state = opt.state_dict()
    for p in params:
        p.data = backend.asarray(np.array(p.data), "float64")
        p.grad = p.data * 0
    opt.load_state_dict(state)
    run(backend, opt, params, 2, CosineSchedule(0.05, 10))
    for arrays in opt._state[0]:
        for a in arrays:
            assert type(a) is type(params[0].data)
