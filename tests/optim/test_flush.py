"""The flush of decaying optimizer state (optim/arrays.py flush_subnormal): a state value whose magnitude
falls below the smallest normal number of its dtype is stored as +0, on every backend, with the
backends' kernels (compiled CPU, CUDA) and with the Array API reference bodies alike.

tests/backends/test_cpu_kernels.py and test_fast_paths.py compare the kernels with the reference bit for
bit on a mix of NaN, zero and subnormal-producing values; here each path is held to the numbers the
rule gives, so that a flush missing from every implementation fails too.
"""

from __future__ import annotations

import numpy as np
import pytest

from xnet.backends import Backend
from xnet.backends.cpu_kernels import loader, table
from xnet.nn.parameter import Parameter
from xnet.optim import SGD, Adadelta, Adam, Adamax, AdamW, Lion, NAdam, Optimizer, RAdam, RMSprop
from xnet.optim.arrays import flush_subnormal

# (optimizer, options, {state that decays: its factor per step when the gradient is 0})
DECAYING = [
    (Adam, {}, {"m": 0.9, "v": 0.999}),
    (AdamW, {}, {"m": 0.9, "v": 0.999}),
    (SGD, {"lr": 0.1, "momentum": 0.9}, {"velocity": 0.9}),
    (SGD, {"lr": 0.1, "momentum": 0.8, "nesterov": True}, {"velocity": 0.8}),
    (RMSprop, {}, {"mean_sq": 0.9}),
    (Adadelta, {}, {"square_avg": 0.9, "acc_delta": 0.9}),
    (Adamax, {}, {"exp_avg": 0.9}),  # its exp_inf = max(b2 * u, |g| + eps) never falls below eps
    (NAdam, {}, {"exp_avg": 0.9, "exp_avg_sq": 0.999}),
    (RAdam, {}, {"exp_avg": 0.9, "exp_avg_sq": 0.999}),
    (Lion, {}, {"exp_avg": 0.99}),  # the stored momentum decays by beta2
]
# in units of the smallest normal number: crossing below it at step 1 (1.001, -1.001, 1.0), later by
# factor 0.9 or 0.8 (1.5 at step 4 or 2, 2.0 at step 7 or 4), never (0, 1e3)
START = np.array([1.001, -1.001, 1.0, 1.5, -1.5, 2.0, 0.0, 1e3])
STEPS = 8
SIGNED = ("m", "velocity", "exp_avg")  # the others are averages of squares: never negative


def start(name: str, dtype: str) -> np.ndarray:
    """State `name`'s first values: START (its magnitudes for averages of squares) times the smallest normal."""
    return ((START if name in SIGNED else np.abs(START)) * np.finfo(dtype).tiny).astype(dtype)


def case_id(case: tuple) -> str:
    cls, opts, _ = case
    return cls.__name__ + "".join(f"-{k}={v}" for k, v in opts.items())


def bits(a: np.ndarray) -> list[str]:
    """Each value's exact bits as text: +0 and -0 differ, and the failure shows which is which."""
    return [x.hex() for x in np.asarray(a, dtype=np.float64).tolist()]


@pytest.mark.parametrize("kernels", ["kernels", "reference"])
@pytest.mark.parametrize("case", DECAYING, ids=case_id)
def test_a_state_decaying_below_the_smallest_normal_number_becomes_plus_zero(
    backend, monkeypatch, case, kernels, dtype
):
    cls, opts, factors = case
    launched = []
    if kernels == "reference":  # a bare backend: no fast path, the Array API body runs
        monkeypatch.setattr(Optimizer, "_find_ops", lambda self: Backend())
    elif backend.name == "numpy" and loader.kernels() is not None:
        optimizer = table.optimizer

        def spy(name, arrays):  # None: no kernel (its first-use check failed), the reference runs
            launch = optimizer(name, arrays)
            if launch is None:
                launched.append(False)
                return None
            # made once, launched every step (NumpyBackend keeps it): each launch is counted
            return lambda scalars: (launched.append(True), launch(scalars))[1]

        monkeypatch.setattr(table, "optimizer", spy)
    tiny = np.finfo(dtype).tiny
    p = Parameter(backend.zeros((START.size,), dtype), "weight")  # zero weights and gradients throughout
    opt = cls([p], **opts)
    state = opt.state_dict()
    for name in factors:
        state["state"][0][name] = start(name, dtype)
    opt.load_state_dict(state)
    want = {name: start(name, dtype) for name in factors}
    for _ in range(STEPS):
        opt.step()
        got = opt.state_dict()["state"][0]
        for name, factor in factors.items():
            decayed = want[name] * np.asarray(factor, dtype)  # in the dtype, as every implementation rounds
            want[name] = np.where(np.abs(decayed) < tiny, np.zeros((), dtype), decayed)
            assert bits(got[name]) == bits(want[name]), (name, opt.t)
    if launched:  # kernels on NumPy: the compiled kernel did every step
        assert launched == [True] * STEPS
    for name in factors:  # the first three crossed at step 1 (the rest by 0.9 and 0.8 too, later)
        assert bits(want[name][:3]) == bits(np.zeros(3, dtype))


def test_the_flush_keeps_normal_values_nan_and_infinities_and_stores_plus_zero(backend, dtype):
    tiny = np.finfo(dtype).tiny
    subnormal = np.nextafter(np.zeros((), dtype), np.ones((), dtype))  # the smallest subnormal number
    given = np.array([tiny, -tiny, tiny / 2, -tiny / 2, subnormal, -subnormal, 0.0, -0.0, np.nan, np.inf, -np.inf,
                      1.5, -2.0e-30], dtype)  # fmt: skip
    want = given.copy()
    want[2:8] = 0.0
    s = backend.asarray(given, dtype)
    flush_subnormal(s, backend.xp)
    assert bits(backend.to_numpy(s)) == bits(want)
