"""The compiled Adamax, NAdam, RAdam and Lion kernels (cpu_kernels/optim.py) where their bodies branch:
RAdam's two loops, NaN and infinities (Adamax's max, Lion's sign), signed zeros, and their first-use checks.

test_cpu_kernels.py runs them with the other optimizer kernels on ordinary values; here each run is
compared with the Array API reference bit for bit, zeros' signs included.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_fast_paths import same_bits

from xnet.backends.cpu_kernels import loader
from xnet.nn.parameter import Parameter
from xnet.optim import Adamax, Lion, NAdam, RAdam

pytestmark = pytest.mark.skipif(loader.kernels() is None, reason=f"compiled CPU kernels off: {loader.reason()}")


def spy_launches(monkeypatch) -> list[dict]:
    """The scalars of every compiled optimizer launch from now on."""
    from xnet.backends.cpu_kernels import table

    launches, optimizer = [], table.optimizer

    def spy(name, arrays):
        launch = optimizer(name, arrays)
        assert launch is not None, name
        return lambda scalars: launches.append(scalars) or launch(scalars)

    monkeypatch.setattr(table, "optimizer", spy)
    return launches


@pytest.mark.parametrize(("betas", "first_rectified"), [((0.9, 0.999), 6), ((0.7, 0.8), 7)])
def test_radam_runs_momentum_sgd_until_the_variance_is_tractable_then_the_rectified_loop(
    monkeypatch, betas, first_rectified
):
    launches = spy_launches(monkeypatch)
    w = Parameter(np.linspace(-1.0, 1.0, 12, dtype=np.float32), "weight")
    opt = RAdam([w], lr=0.01, betas=betas)
    for _ in range(8):
        w.grad[...] = np.cos(np.arange(12, dtype=np.float32))
        opt.step()
    rectified = [scalars["rectified"] for scalars in launches]
    assert rectified == [0] * (first_rectified - 1) + [1] * (9 - first_rectified)


def special_values(dtype: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """Weights with signed zeros, and three steps' gradients with NaN, infinities and signed zeros."""
    w = np.array([0.5, -0.0, 0.0, -1.5, 2.0, -0.0, 0.25, 1.0, -2.0, 0.0], dtype)
    g1 = np.array([np.nan, -0.0, 0.0, np.inf, -np.inf, -0.0, 1e-30, -1e-30, 3.0, -0.0], dtype)
    g2 = np.array([1.0, -0.0, -0.0, 0.0, 1.0, 2.0, -0.0, np.nan, -3.0, -0.0], dtype)
    g3 = np.array([-1.0, 0.0, -0.0, -0.0, np.inf, -2.0, 0.0, 0.5, np.nan, -0.0], dtype)
    return w, [g1, g2, g3]


def run_special(cls, opts: dict, dtype: str) -> list[np.ndarray]:
    w, grads = special_values(dtype)
    p = Parameter(w, "weight", regularize=True)
    opt = cls([p], **opts)
    for g in grads:
        p.grad[...] = g
        opt.step()
    return [p.data.copy(), p.grad.copy(), *(a for s in opt.state_dict()["state"] for a in s.values())]


@pytest.mark.parametrize(
    ("cls", "opts"),
    [
        (Adamax, {"lr": 0.1}),
        (Adamax, {"lr": 0.1, "weight_decay": 0.1}),
        (NAdam, {"lr": 0.1, "weight_decay": 0.1, "decoupled_weight_decay": True}),
        (RAdam, {"lr": 0.1, "weight_decay": 0.1}),
        (Lion, {"lr": 0.1}),
        (Lion, {"lr": 0.1, "weight_decay": 0.5}),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "-".join(f"{k}={x}" for k, x in v.items()),
)
def test_nan_infinities_and_signed_zeros_give_the_reference_bits(monkeypatch, cls, opts, dtype):
    launches = spy_launches(monkeypatch)
    with np.errstate(all="ignore"):
        got = run_special(cls, opts, dtype)
        assert len(launches) == 3  # the compiled kernel did every step
        monkeypatch.setattr(loader, "kernels", lambda: None)  # the Array API bodies
        want = run_special(cls, opts, dtype)
    for a, b in zip(got, want, strict=True):
        assert same_bits(a, b), (a, b)


@pytest.mark.parametrize("name", ["adamax", "nadam", "radam", "lion"])
def test_the_first_use_check_passes_the_kernel_and_catches_a_changed_one(monkeypatch, name, dtype):
    from xnet.backends.cpu_kernels import optim
    from xnet.backends.cpu_kernels.optim_probe import optimizer_probe

    assert optimizer_probe(name, np.dtype(dtype)) is None
    kernel = optim.OPTIMIZERS[name]

    def off_by_one_ulp(*args):  # the kernel, then the weights moved one ulp: what another rounding gives
        kernel(*args)
        param = args[-3 if name == "lion" else -4]  # (..., param, grad, *state)
        param[...] = np.nextafter(param, np.inf)

    monkeypatch.setitem(optim.OPTIMIZERS, name, off_by_one_ulp)
    assert optimizer_probe(name, np.dtype(dtype)) == "gave other updates"


def test_the_first_use_check_catches_a_lion_kernel_using_numbas_sign(monkeypatch):
    # Numba's np.sign(-0.0) is -0.0 where NumPy's is +0.0: lr * sign(c) would turn a -0.0 weight into +0.0
    import numba

    from xnet.backends.cpu_kernels import optim
    from xnet.backends.cpu_kernels.optim_probe import optimizer_probe

    @numba.njit(error_model="numpy")
    def lion(lr, b1, one_minus_b1, b2, one_minus_b2, wd, shrink, decay, param, grad, m):
        optim._decay(param, grad, wd, shrink, decay)
        for i in range(param.shape[0]):
            c = optim._moment(m[i], grad[i], b1, one_minus_b1)
            param[i] -= lr * np.sign(c)
            m[i] = optim._moment(m[i], grad[i], b2, one_minus_b2)

    monkeypatch.setitem(optim.OPTIMIZERS, "lion", lion)
    assert optimizer_probe("lion", np.dtype("float32")) == "gave other updates"


# the kernels whose state decays, and how many state arrays each updates (after param and grad)
DECAYING_STATES = {"adam": 2, "sgd_momentum": 1, "rmsprop": 1, "adadelta": 2, "adamax": 2, "nadam": 2, "radam": 2,
                   "lion": 1}  # fmt: skip


@pytest.mark.parametrize("name", list(DECAYING_STATES))
def test_the_first_use_check_catches_a_kernel_that_keeps_subnormal_state(monkeypatch, name, dtype):
    from xnet.backends.cpu_kernels import optim
    from xnet.backends.cpu_kernels.optim_probe import optimizer_probe

    assert optimizer_probe(name, np.dtype(dtype)) is None
    kernel = optim.OPTIMIZERS[name]

    def unflushed(*args):  # the kernel, then the probe's value 3 as the decay without the flush leaves it
        kernel(*args)
        for state in args[len(args) - DECAYING_STATES[name] :]:
            if state[3] == 0:  # flushed (Adamax's norm is eps there: no flush)
                state[3] = np.finfo(dtype).tiny / 2

    monkeypatch.setitem(optim.OPTIMIZERS, name, unflushed)
    assert optimizer_probe(name, np.dtype(dtype)) == "gave other updates"
