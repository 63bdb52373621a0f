"""Optimizers: three steps against the formulas, param groups, step order, convergence, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xnet.nn.parameter import Parameter
from xnet.optim import (
    DEFAULT_LRS,
    L2,
    OPTIMIZERS,
    SGD,
    Adagrad,
    Adam,
    AdamW,
    RMSprop,
    get_optimizer,
)

W0 = np.array([[0.5, -1.2, 2.0], [0.0, 0.3, -0.7]])
B0 = np.array([0.1, -0.2, 0.3])
# a different gradient each step, so state (momentum, squares, bias correction) matters
GRADS_W = [W0 * 0.3 + 0.1, np.array([[-1.0, 0.4, 0.2], [0.7, -0.5, 1.1]]), W0 * -0.2 + 0.05]
GRADS_B = [np.array([0.5, -0.1, 0.2]), np.array([-0.3, 0.6, 0.0]), np.array([0.2, 0.2, -0.4])]


def make_params(backend, dtype="float64"):
    # copies: NumPy's asarray would alias the module constants, which step() updates in place
    w = Parameter(backend.asarray(W0.copy(), dtype), "weight", regularize=True)
    b = Parameter(backend.asarray(B0.copy(), dtype), "bias", regularize=False)
    return w, b


def set_grads(backend, params, k):
    for p, g in zip(params, (GRADS_W[k], GRADS_B[k]), strict=True):
        p.grad = backend.asarray(g.copy(), "float64")  # step() may add into p.grad


# -- reference implementations, straight from the formulas (NumPy float64) --------------------


def ref_run(kind, opts, steps=3):
    """Parameters after `steps` updates, computed per element from the textbook formulas."""
    ws = [W0.copy(), B0.copy()]
    regs = [True, False]
    lr = opts.get("lr", 0.1)
    state = [dict(v=np.zeros_like(w), m=np.zeros_like(w), G=np.zeros_like(w)) for w in ws]
    for t in range(1, steps + 1):
        for i, (w, reg) in enumerate(zip(ws, regs, strict=True)):
            g = (GRADS_W, GRADS_B)[i][t - 1].copy()
            s = state[i]
            wd_default = 0.01 if kind == "adamw" else 0.0  # AdamW decays by default
            wd = opts.get("weight_decay", wd_default) if (reg or opts.get("decay_all")) else 0.0
            if kind != "adamw":
                g = g + wd * w
            if kind == "sgd":
                mu = opts.get("momentum", 0.0)
                if mu == 0:
                    ws[i] = w - lr * g
                else:
                    s["v"] = mu * s["v"] - lr * g
                    if opts.get("nesterov"):
                        ws[i] = w + mu * s["v"] - lr * g
                    else:
                        ws[i] = w + s["v"]
            elif kind == "adagrad":
                eps = opts.get("eps", 1e-8)
                if t == 1:
                    s["G"] = s["G"] + opts.get("initial_accumulator_value", 0.0)
                s["G"] = s["G"] + g**2
                ws[i] = w - lr * g / (np.sqrt(s["G"]) + eps)
            elif kind == "rmsprop":
                rho, eps = opts.get("rho", 0.9), opts.get("eps", 1e-8)
                s["G"] = rho * s["G"] + (1 - rho) * g**2
                ws[i] = w - lr * g / (np.sqrt(s["G"]) + eps)
            else:  # adam, adamw
                b1, b2, eps = opts.get("beta1", 0.9), opts.get("beta2", 0.999), opts.get("eps", 1e-8)
                if kind == "adamw":
                    w = w - lr * wd * w
                s["m"] = b1 * s["m"] + (1 - b1) * g
                s["v"] = b2 * s["v"] + (1 - b2) * g**2
                if opts.get("bias_correction", True):
                    m_hat, v_hat = s["m"] / (1 - b1**t), s["v"] / (1 - b2**t)
                else:
                    m_hat, v_hat = s["m"], s["v"]
                ws[i] = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return ws


CLASSES = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}

CASES = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.05}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.05, "decay_all": True}),
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("adagrad", {"lr": 0.3}),
    ("adagrad", {"lr": 0.3, "eps": 1e-3, "weight_decay": 0.1}),
    ("adagrad", {"lr": 0.3, "initial_accumulator_value": 0.1}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "rho": 0.5, "eps": 1e-4}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "beta1": 0.5, "beta2": 0.9, "eps": 1e-6}),
    ("adam", {"lr": 0.01, "bias_correction": False}),
    ("adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("adamw", {"lr": 0.01}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.5}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.5, "decay_all": True}),
]


def build(kind, params, opts):
    """The optimizer under test; decay_all goes in a param group, as users would set it."""
    opts = dict(opts)
    decay_all = opts.pop("decay_all", False)
    spec = [{"params": list(params), "decay_all": True}] if decay_all else list(params)
    return CLASSES[kind](spec, **opts)


@pytest.mark.parametrize("kind,opts", CASES, ids=[f"{k}-{'-'.join(o)}" for k, o in CASES])
def test_three_steps_match_formula(backend, kind, opts):
    params = make_params(backend)
    opt = build(kind, params, opts)
    for k in range(3):
        set_grads(backend, params, k)
        opt.step()
    expect = ref_run(kind, opts)
    for p, e in zip(params, expect, strict=True):
        np.testing.assert_allclose(backend.to_numpy(p.data), e, rtol=1e-12, atol=1e-15)
    assert opt.t == 3


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_follows_a_learning_rate_changed_between_steps(backend, momentum):
    # SGD keeps its update rule while its hyper-parameters stay the same: a new lr must reach it
    params = make_params(backend)
    opt = SGD(list(params), lr=0.1, momentum=momentum)
    lrs = [0.1, 0.1, 0.02]
    ws, v = [W0.copy(), B0.copy()], [np.zeros_like(W0), np.zeros_like(B0)]
    for k, lr in enumerate(lrs):
        opt.lr = lr
        set_grads(backend, params, k)
        opt.step()
        for i, g in enumerate((GRADS_W[k], GRADS_B[k])):
            v[i] = momentum * v[i] - lr * g
            ws[i] = ws[i] + v[i]
    for p, e in zip(params, ws, strict=True):
        np.testing.assert_allclose(backend.to_numpy(p.data), e, rtol=1e-12, atol=1e-15)


def test_nesterov_differs_from_momentum(backend):
    # guards the reference itself: the two forms must not coincide after a few steps
    a = ref_run("sgd", {"lr": 0.1, "momentum": 0.9})
    b = ref_run("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True})
    assert not np.allclose(a[0], b[0])


def test_adamw_leaves_bias_undecayed(backend):
    params = make_params(backend)
    decayed = AdamW(params, lr=0.01, weight_decay=0.5)
    plain_params = make_params(backend)
    plain = Adam(plain_params, lr=0.01)
    for k in range(3):
        set_grads(backend, params, k)
        set_grads(backend, plain_params, k)
        decayed.step()
        plain.step()
    w, b = (backend.to_numpy(p.data) for p in params)
    pw, pb = (backend.to_numpy(p.data) for p in plain_params)
    np.testing.assert_array_equal(b, pb)  # bias: regularize=False
    assert not np.allclose(w, pw)


def test_state_stays_on_device_and_dtype(backend, dtype):
    params = make_params(backend, dtype)
    opt = Adam(params, lr=0.01, weight_decay=0.1, regularizers=[L2(0.01)], clip_norm=1.0)
    for k in range(2):
        for p, g in zip(params, (GRADS_W[k], GRADS_B[k]), strict=True):
            p.grad = backend.asarray(g.copy(), dtype)
        opt.step()
    xp = backend.xp
    for p in params:
        assert p.data.dtype == xp.float32 if dtype == "float32" else p.data.dtype == xp.float64
    for states in opt._state:
        for arrays in states:
            for a in arrays:
                assert a.dtype == params[0].data.dtype
                if backend.name != "numpy":
                    assert a.device == backend.device


def test_param_groups_relative_lr_and_overrides(backend):
    w, b = make_params(backend)
    opt = SGD([{"params": [w], "weight_decay": 0.1}, {"params": [b], "lr": 0.05}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.05]
    assert opt.param_groups[1]["lr_scale"] == pytest.approx(0.5)
    opt.lr = 0.4  # what the trainer does every step
    assert opt.lr == 0.4
    assert [g["lr"] for g in opt.param_groups] == [0.4, pytest.approx(0.2)]
    set_grads(backend, (w, b), 0)
    opt.step()
    np.testing.assert_allclose(
        backend.to_numpy(w.data), W0 - 0.4 * (GRADS_W[0] + 0.1 * W0), rtol=1e-12
    )
    np.testing.assert_allclose(backend.to_numpy(b.data), B0 - 0.2 * GRADS_B[0], rtol=1e-12)


def test_group_lr_scale_key(backend):
    w, b = make_params(backend)
    opt = Adam([{"params": [w]}, {"params": [b], "lr_scale": 0.0}], lr=0.01)
    set_grads(backend, (w, b), 0)
    opt.step()
    np.testing.assert_array_equal(backend.to_numpy(b.data), B0)  # frozen by lr_scale 0
    assert not np.allclose(backend.to_numpy(w.data), W0)


def test_zero_grad(backend):
    params = make_params(backend)
    set_grads(backend, params, 0)
    SGD(params, lr=0.1).zero_grad()
    for p in params:
        assert not np.any(backend.to_numpy(p.grad))


def test_step_order_regularize_then_clip_then_update(backend):
    # L2 gradient is added first, then the global norm clip sees it, then the update
    params = make_params(backend)
    lam, max_norm, lr = 0.5, 0.3, 0.1
    opt = SGD(params, lr=lr, regularizers=[L2(lam)], clip_norm=max_norm)
    set_grads(backend, params, 0)
    opt.step()
    gw, gb = GRADS_W[0] + lam * W0, GRADS_B[0]
    norm = math.sqrt((gw**2).sum() + (gb**2).sum())
    scale = min(1.0, max_norm / (norm + 1e-6))
    assert scale < 1
    np.testing.assert_allclose(backend.to_numpy(params[0].data), W0 - lr * scale * gw, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(params[1].data), B0 - lr * scale * gb, rtol=1e-12)
    np.testing.assert_allclose(float(backend.to_numpy(opt.last_grad_norm)), norm, rtol=1e-12)


def test_clip_value_in_step(backend):
    params = make_params(backend)
    opt = SGD(params, lr=1.0, clip_value=0.25)
    set_grads(backend, params, 1)
    opt.step()
    np.testing.assert_allclose(
        backend.to_numpy(params[0].data), W0 - np.clip(GRADS_W[1], -0.25, 0.25), rtol=1e-12
    )


# -- convergence on a quadratic bowl ------------------------------------------------------------

BOWL_A = np.array([1.0, 4.0, 0.5, 2.0])  # curvatures
BOWL_C = np.array([1.0, -2.0, 0.5, 3.0])  # minimum


@pytest.mark.parametrize(
    "name,lr,steps",
    [
        ("sgd", 0.2, 100),
        ("momentum", 0.05, 200),
        ("nesterov", 0.05, 200),
        ("adagrad", 1.0, 300),
        ("rmsprop", 0.01, 600),
        ("adam", 0.05, 600),
        ("adamw", 0.05, 600),
    ],
)
def test_converges_on_quadratic_bowl(backend, name, lr, steps):
    p = Parameter(backend.asarray(np.zeros(4), "float64"), "w", regularize=False)
    opt = get_optimizer(name, [p], lr=lr)
    a, c = backend.asarray(BOWL_A, "float64"), backend.asarray(BOWL_C, "float64")
    for _ in range(steps):
        opt.zero_grad()
        p.grad += a * (p.data - c)  # gradient of 0.5 * sum a (w - c)^2
        opt.step()
    np.testing.assert_allclose(backend.to_numpy(p.data), BOWL_C, atol=2e-2)


# -- factory and bad input ---------------------------------------------------------------------


def test_get_optimizer_names_and_defaults(backend):
    w, b = make_params(backend)
    for name in OPTIMIZERS:
        opt = get_optimizer(name, [w, b])
        assert opt.lr == DEFAULT_LRS[name]
    m = get_optimizer("momentum", [w])
    assert isinstance(m, SGD) and m.param_groups[0]["momentum"] == 0.9
    n = get_optimizer("NESTEROV", [w], lr=0.2, momentum=0.5)
    assert n.param_groups[0]["nesterov"] and n.param_groups[0]["momentum"] == 0.5 and n.lr == 0.2
    assert isinstance(get_optimizer("adamw", [w]), AdamW)
    assert get_optimizer("adamw", [w]).param_groups[0]["weight_decay"] == 0.01
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'.*sgd.*adamw"):
        get_optimizer("lbfgs", [w])


@pytest.mark.parametrize(
    "cls,kwargs,arg,shown",
    [
        (SGD, {"lr": -0.1}, "lr", "-0.1"),
        (SGD, {"lr": float("nan")}, "lr", "nan"),
        (SGD, {"lr": float("inf")}, "lr", "inf"),
        (SGD, {"lr": 0.1, "momentum": 1.0}, "momentum", "1.0"),
        (SGD, {"lr": 0.1, "momentum": -0.1}, "momentum", "-0.1"),
        (SGD, {"lr": 0.1, "nesterov": True}, "nesterov", "momentum=0.0"),
        (SGD, {"lr": 0.1, "weight_decay": -1.0}, "weight_decay", "-1.0"),
        (SGD, {"lr": 0.1, "clip_norm": 0.0}, "clip_norm", "0.0"),
        (SGD, {"lr": 0.1, "clip_value": -1.0}, "clip_value", "-1.0"),
        (Adagrad, {"eps": 0.0}, "eps", "0.0"),
        (RMSprop, {"rho": 1.0}, "rho", "1.0"),
        (RMSprop, {"eps": -1e-8}, "eps", "-1e-08"),
        (Adam, {"beta1": 1.0}, "beta1", "1.0"),
        (Adam, {"beta2": 1.5}, "beta2", "1.5"),
        (Adam, {"eps": 0.0}, "eps", "0.0"),
        (AdamW, {"betas": (0.9, -0.1)}, "beta2", "-0.1"),
        (AdamW, {"lr": -1e-3}, "lr", "-0.001"),
    ],
)
def test_bad_hyperparameters_name_the_argument(backend, cls, kwargs, arg, shown):
    w, b = make_params(backend)
    with pytest.raises(ValueError, match=arg) as e:
        cls([w, b], **kwargs)
    assert shown in str(e.value) and cls.__name__ in str(e.value)


def test_bad_params(backend):
    w, b = make_params(backend)
    with pytest.raises(ValueError, match="no parameters"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="no parameters"):
        Adam(iter(()))
    with pytest.raises(TypeError, match="single Parameter"):
        SGD(w, lr=0.1)
    with pytest.raises(TypeError, match="Parameters"):
        SGD([w.data], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        SGD([{"params": [w]}, {"params": [w, b]}], lr=0.1)
    with pytest.raises(ValueError, match="unknown param-group key.*'beta1'"):
        SGD([{"params": [w], "beta1": 0.9}], lr=0.1)
    with pytest.raises(ValueError, match="momentum"):
        SGD([{"params": [w], "momentum": 2.0}], lr=0.1)


def test_lr_setter_rejects_bad_values(backend):
    opt = SGD(make_params(backend), lr=0.1)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lr"):
            opt.lr = bad
    with pytest.raises(TypeError, match="lr must be a number"):
        opt.lr = "0.1"
    assert opt.lr == 0.1
