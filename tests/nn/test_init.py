"""Initialisers: statistics of every recipe, string arguments, callables, fans, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xnet.backends import get_backend
from xnet.nn.init import INITIALIZERS, fans, initialize, parse_init

SHAPE = (200, 300)  # Dense (in, out): fan_in 200, fan_out 300
FAN_IN, FAN_OUT = 200, 300

# name -> (mean, std, bound or None)
EXPECTED = {
    "normal": (0.0, 0.01, None),
    "uniform": (0.0, 0.1 / math.sqrt(12), 0.05),
    "xavier_normal": (0.0, math.sqrt(2 / (FAN_IN + FAN_OUT)), None),
    "xavier_uniform": (0.0, math.sqrt(6 / 500) / math.sqrt(3), math.sqrt(6 / 500)),
    "kaiming_normal": (0.0, math.sqrt(2) / math.sqrt(FAN_IN), None),
    "kaiming_uniform": (0.0, math.sqrt(2 / FAN_IN), math.sqrt(2) * math.sqrt(3 / FAN_IN)),
    "torch": (0.0, 1 / math.sqrt(FAN_IN) / math.sqrt(3), 1 / math.sqrt(FAN_IN)),
    "keras": (0.0, math.sqrt(6 / 500) / math.sqrt(3), math.sqrt(6 / 500)),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_random_initialiser_statistics(backend, dtype, name):
    mean, std, bound = EXPECTED[name]
    backend.rng.seed(0)
    w = initialize(name, backend, SHAPE, FAN_IN, FAN_OUT, dtype)
    host = backend.to_numpy(w)
    assert host.shape == SHAPE and host.dtype == np.dtype(dtype)
    # 60 000 draws: the sample std is within ~0.3% and the mean within ~0.4% of std
    assert abs(host.mean() - mean) < 0.02 * std
    assert abs(host.std() - std) < 0.02 * std
    if bound is not None:
        assert host.min() >= -bound and host.max() <= bound
        assert host.max() > 0.99 * bound and host.min() < -0.99 * bound


@pytest.mark.parametrize(
    ("spec", "value"),
    [("zeros", 0.0), ("ones", 1.0), ("constant(value=0.5)", 0.5), ("constant", 0.0)],
)
def test_constant_initialisers(backend, dtype, spec, value):
    w = backend.to_numpy(initialize(spec, backend, (3, 4), 3, 4, dtype))
    assert w.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(w, np.full((3, 4), value, dtype=dtype))


def test_string_arguments_change_the_distribution(backend):
    backend.rng.seed(1)
    w = backend.to_numpy(initialize("normal(std=0.2, mean=1.5)", backend, SHAPE, 1, 1, "float64"))
    assert abs(w.mean() - 1.5) < 0.005 and abs(w.std() - 0.2) < 0.004
    u = backend.to_numpy(initialize("uniform(a=-0.1, b=0.3)", backend, SHAPE, 1, 1, "float32"))
    assert u.min() >= -0.1 and u.max() <= 0.3 and abs(u.mean() - 0.1) < 0.002
    k = backend.to_numpy(initialize("kaiming_normal(gain=1)", backend, SHAPE, 100, 1, "float64"))
    assert abs(k.std() - 0.1) < 0.002


def test_parse_init_accepts_aliases_and_spaces():
    assert parse_init("  He_Normal ") == ("kaiming_normal", {})
    assert parse_init("glorot_uniform( gain = 2 )") == ("xavier_uniform", {"gain": 2.0})
    assert parse_init("uniform(a=-1e-2,b=1e-2)") == ("uniform", {"a": -0.01, "b": 0.01})


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("gaussian", "valid names: zeros, ones, constant, normal"),
        ("normal(sd=1)", "expected std=<number>, mean=<number>"),
        ("normal(std=big)", "std must be a number, got 'big'"),
        ("zeros(value=1)", "expected no arguments"),
        ("normal(std=0.1", "valid names"),
        (3, "valid names"),
    ],
)
def test_bad_initialiser_names_and_arguments(backend, spec, fragment):
    with pytest.raises(ValueError) as e:
        initialize(spec, backend, (2, 2), 2, 2, "float32")
    assert fragment in str(e.value)


def test_initializers_list_is_complete():
    assert set(INITIALIZERS) == {
        "zeros", "ones", "constant", "normal", "uniform",
        "xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform", "torch", "keras",
    }  # fmt: skip


def test_callable_initialiser_is_called_with_fans_and_cast(backend):
    seen = {}

    def init(b, shape, fan_in, fan_out, dtype):
        seen.update(shape=shape, fans=(fan_in, fan_out), dtype=dtype)
        return np.arange(math.prod(shape), dtype=np.float64).reshape(shape)

    w = initialize(init, backend, (2, 3), 2, 3, "float32")
    assert seen == {"shape": (2, 3), "fans": (2, 3), "dtype": "float32"}
    host = backend.to_numpy(w)
    assert host.dtype == np.float32
    np.testing.assert_array_equal(host, np.arange(6).reshape(2, 3))


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((784, 100), (784, 100)),  # Dense (in, out)
        ((16, 3, 5, 5), (75, 400)),  # conv (C_out, C_in, kh, kw)
        ((32, 4, 3, 3), (36, 288)),  # grouped conv: C_in/groups = 4
        ((8, 2, 7), (14, 56)),  # 1-d kernel
        ((10,), (10, 10)),  # bias
        ((), (1, 1)),
    ],
)
def test_fans(shape, expected):
    assert fans(shape) == expected


def test_kaiming_with_conv_fans(backend):
    shape = (64, 8, 5, 5)  # fan_in = 200
    backend.rng.seed(3)
    w = backend.to_numpy(initialize("kaiming_normal", backend, shape, *fans(shape), "float64"))
    assert abs(w.std() - math.sqrt(2 / 200)) < 0.02 * math.sqrt(2 / 200)


def test_same_seed_same_draws_on_numpy_and_strict():
    a, b = get_backend("cpu", seed=11), get_backend("strict", seed=11)
    for name in ("normal", "xavier_uniform", "kaiming_normal"):
        wa = a.to_numpy(initialize(name, a, (5, 7), 5, 7, "float32"))
        wb = b.to_numpy(initialize(name, b, (5, 7), 5, 7, "float32"))
        np.testing.assert_array_equal(wa, wb)
    a.rng.seed(4)
    first = a.to_numpy(initialize("normal", a, (5,), 5, 5, "float64"))
    a.rng.seed(4)
    np.testing.assert_array_equal(first, a.to_numpy(initialize("normal", a, (5,), 5, 5, "float64")))


def test_nonpositive_fans_are_refused(backend):
    with pytest.raises(ValueError, match="fans must be positive"):
        initialize("kaiming_normal", backend, (0, 3), 0, 3, "float32")
