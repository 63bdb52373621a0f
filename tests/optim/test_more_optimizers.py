"""Adadelta, Adamax, NAdam, RAdam, Lion: steps against the published update rules, written out per element."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xnet.nn.parameter import Parameter
from xnet.optim import L2, Adadelta, Adamax, Lion, NAdam, RAdam, get_optimizer

W0 = np.array([[0.5, -1.2, 2.0], [0.0, 0.3, -0.7]])
B0 = np.array([0.1, -0.2, 0.3])
RNG = np.random.default_rng(3)
# a different gradient each step (some exactly 0) so every piece of state matters
GRADS = [(RNG.normal(size=W0.shape), RNG.normal(size=B0.shape)) for _ in range(8)]
GRADS[1][0][0, 0] = 0.0
CLASSES = {"adadelta": Adadelta, "adamax": Adamax, "nadam": NAdam, "radam": RAdam, "lion": Lion}


def reference(kind: str, opts: dict, steps: int) -> list[np.ndarray]:
    """The weights after `steps` steps, each element computed from the paper's / PyTorch's formula."""
    ws = [W0.copy(), B0.copy()]
    state = [{"a": np.zeros_like(w), "b": np.zeros_like(w)} for w in ws]
    lr = opts["lr"]
    b1, b2 = opts.get("beta1", 0.9), opts.get("beta2", 0.99 if kind == "lion" else 0.999)
    eps = opts.get("eps", 1e-6 if kind == "adadelta" else 1e-8)
    decoupled = kind == "lion" or opts.get("decoupled_weight_decay", False)
    product = 1.0  # NAdam's running product of momenta
    for t in range(1, steps + 1):
        if kind == "nadam":
            md = opts.get("momentum_decay", 0.004)
            mu, mu_next = (b1 * (1 - 0.5 * 0.96 ** (s * md)) for s in (t, t + 1))
            product *= mu
        for i in range(2):
            w, g, s = ws[i], GRADS[t - 1][i].copy(), state[i]
            wd = opts.get("weight_decay", 0.0) if (i == 0 or opts.get("decay_all")) else 0.0
            if decoupled:
                w = w * (1 - lr * wd)
            else:
                g = g + wd * w
            if kind == "adadelta":
                rho = opts.get("rho", 0.9)
                s["a"] = rho * s["a"] + (1 - rho) * g**2
                dx = np.sqrt(s["b"] + eps) / np.sqrt(s["a"] + eps) * g
                s["b"] = rho * s["b"] + (1 - rho) * dx**2
                w = w - lr * dx
            elif kind == "adamax":
                s["a"] = b1 * s["a"] + (1 - b1) * g
                s["b"] = np.maximum(b2 * s["b"], np.abs(g) + eps)
                w = w - lr / (1 - b1**t) * s["a"] / s["b"]
            elif kind == "nadam":
                s["a"] = b1 * s["a"] + (1 - b1) * g
                s["b"] = b2 * s["b"] + (1 - b2) * g**2
                d = np.sqrt(s["b"] / (1 - b2**t)) + eps
                w = w - lr * (1 - mu) / (1 - product) * g / d - lr * mu_next / (1 - product * mu_next) * s["a"] / d
            elif kind == "radam":
                s["a"] = b1 * s["a"] + (1 - b1) * g
                s["b"] = b2 * s["b"] + (1 - b2) * g**2
                m_hat = s["a"] / (1 - b1**t)
                rho_inf = 2 / (1 - b2) - 1
                rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
                if rho_t > 5:
                    r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                    w = w - lr * m_hat * r * math.sqrt(1 - b2**t) / (np.sqrt(s["b"]) + eps)
                else:
                    w = w - lr * m_hat
            else:  # lion
                w = w - lr * np.sign(b1 * s["a"] + (1 - b1) * g)
                s["a"] = b2 * s["a"] + (1 - b2) * g
            ws[i] = w
    return ws


CASES = [
    ("adadelta", {"lr": 1.0}),
    ("adadelta", {"lr": 0.5, "rho": 0.7, "eps": 1e-3, "weight_decay": 0.1}),
    ("adamax", {"lr": 0.002}),
    ("adamax", {"lr": 0.05, "beta1": 0.6, "beta2": 0.9, "eps": 1e-3, "weight_decay": 0.2, "decay_all": True}),
    ("nadam", {"lr": 0.01}),
    ("nadam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.95, "momentum_decay": 0.05, "weight_decay": 0.1}),
    ("nadam", {"lr": 0.01, "weight_decay": 0.3, "decoupled_weight_decay": True}),
    ("radam", {"lr": 0.01}),
    ("radam", {"lr": 0.01, "beta1": 0.7, "beta2": 0.9, "eps": 1e-3, "weight_decay": 0.1}),
    ("radam", {"lr": 0.01, "weight_decay": 0.3, "decoupled_weight_decay": True, "decay_all": True}),
    ("lion", {"lr": 0.01}),
    ("lion", {"lr": 0.01, "beta1": 0.5, "beta2": 0.8, "weight_decay": 0.5}),
]


def build(backend, kind, opts):
    w = Parameter(backend.asarray(W0.copy(), "float64"), "weight", regularize=True)
    b = Parameter(backend.asarray(B0.copy(), "float64"), "bias", regularize=False)
    opts = dict(opts)
    spec = [{"params": [w, b], "decay_all": True}] if opts.pop("decay_all", False) else [w, b]
    return (w, b), CLASSES[kind](spec, **opts)


@pytest.mark.parametrize("kind,opts", CASES, ids=[f"{k}-{'-'.join(o)}" for k, o in CASES])
def test_steps_match_formula(backend, kind, opts):
    steps = 7  # RAdam: steps 1-5 are momentum SGD, 6-7 rectified Adam (beta2 0.999 and 0.9 alike)
    params, opt = build(backend, kind, opts)
    for k in range(steps):
        for p, g in zip(params, GRADS[k], strict=True):
            p.grad = backend.asarray(g.copy(), "float64")
        opt.step()
    for p, e in zip(params, reference(kind, opts, steps), strict=True):
        np.testing.assert_allclose(backend.to_numpy(p.data), e, rtol=1e-12, atol=1e-15)


def test_first_steps_by_hand(backend):
    """Closed forms of step 1 on one weight w=1, g=2: numbers a reader can check on paper."""

    def one_step(cls, **kw):
        p = Parameter(backend.asarray(np.array([1.0]), "float64"), "w")
        p.grad = backend.asarray(np.array([2.0]), "float64")
        cls([p], **kw).step()
        return float(backend.to_numpy(p.data)[0])

    # Adadelta: E[g^2] = 0.1 * 4 = 0.4; dx = sqrt(eps) / sqrt(0.4 + eps) * 2
    assert one_step(Adadelta, lr=1.0) == pytest.approx(1 - math.sqrt(1e-6) / math.sqrt(0.4 + 1e-6) * 2, rel=1e-14)
    # Adamax: m = 0.2, u = 2 + eps, step lr / 0.1: w = 1 - 0.02 * 0.2 / (2 + 1e-8)
    assert one_step(Adamax) == pytest.approx(1 - 0.02 * 0.2 / (2 + 1e-8), rel=1e-14)
    # RAdam: rho_1 = 1 <= 5, so w -= lr * m_hat = lr * g
    assert one_step(RAdam, lr=0.1) == pytest.approx(1 - 0.1 * 2, rel=1e-14)
    # Lion: w -= lr * sign(0.1 * 2); with decay 0.5: w = 1 * (1 - 0.1 * 0.5) - 0.1
    assert one_step(Lion, lr=0.1) == pytest.approx(0.9, rel=1e-14)
    assert one_step(Lion, lr=0.1, weight_decay=0.5) == pytest.approx(0.85, rel=1e-14)
    # NAdam: mu1 = 0.9 * (1 - 0.5 * 0.96^0.004), mu2 likewise; d = sqrt(0.004 / 0.001) + eps = 2 + eps
    mu1, mu2 = (0.9 * (1 - 0.5 * 0.96 ** (0.004 * t)) for t in (1, 2))
    expect = 1 - 0.002 * (1 - mu1) / (1 - mu1) * 2 / (2 + 1e-8) - 0.002 * mu2 / (1 - mu1 * mu2) * 0.2 / (2 + 1e-8)
    assert one_step(NAdam) == pytest.approx(expect, rel=1e-14)


def test_betas_pair_and_bad_values(backend):
    w = Parameter(backend.asarray(W0.copy(), "float64"), "weight")
    for cls in (Adamax, NAdam, RAdam, Lion):
        opt = cls([w], betas=(0.5, 0.6))
        assert (opt.param_groups[0]["beta1"], opt.param_groups[0]["beta2"]) == (0.5, 0.6)
        with pytest.raises(ValueError, match="beta2 must be in \\[0, 1\\), got 1.5"):
            cls([w], betas=(0.5, 1.5))
        with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0, got -1"):
            cls([w], weight_decay=-1)
    with pytest.raises(ValueError, match="Adadelta: rho must be in \\[0, 1\\), got 1.0"):
        Adadelta([w], rho=1.0)
    with pytest.raises(ValueError, match="NAdam: momentum_decay must be a finite number >= 0"):
        NAdam([w], momentum_decay=-0.1)
    with pytest.raises(TypeError, match="RAdam: decoupled_weight_decay must be"):
        RAdam([w], decoupled_weight_decay="yes")


@pytest.mark.parametrize("name", ["adadelta", "adamax", "nadam", "radam", "lion"])
def test_regularisers_and_clipping_apply(backend, name):
    """With L2 and clipping, the update is the plain one on clip(g + lam * w): the base class applies them first."""
    w = Parameter(backend.asarray(W0.copy(), "float64"), "weight")
    w.grad = backend.asarray(GRADS[0][0].copy(), "float64")
    get_optimizer(name, [w], lr=0.01, regularizers=[L2(0.5)], clip_value=0.3).step()
    plain = Parameter(backend.asarray(W0.copy(), "float64"), "weight")
    plain.grad = backend.asarray(np.clip(GRADS[0][0] + 0.5 * W0, -0.3, 0.3), "float64")
    get_optimizer(name, [plain], lr=0.01).step()
    np.testing.assert_allclose(backend.to_numpy(w.data), backend.to_numpy(plain.data), rtol=1e-15, atol=1e-15)
    assert not np.allclose(backend.to_numpy(w.data), W0)


def test_nadam_momentum_product_after_reload_matches(backend):
    """The running product of momenta, rebuilt from t after load_state_dict, equals the one kept step by step."""
    params, opt = build(backend, "nadam", {"lr": 0.01})
    for k in range(4):
        for p, g in zip(params, GRADS[k], strict=True):
            p.grad = backend.asarray(g.copy(), "float64")
        opt.step()
    kept = opt._mu_product(opt.param_groups[0], 5)
    params2, opt2 = build(backend, "nadam", {"lr": 0.01})
    opt2.load_state_dict(opt.state_dict())
    assert opt2._mu_product(opt2.param_groups[0], 5) == kept
