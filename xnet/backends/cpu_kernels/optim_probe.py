"""The first-use check of the optimizer kernels (optim.py): the reference bodies of xnet/optim, written
out with NumPy for the probe's small arrays, against one call of the compiled kernel (RAdam: one of each of
its two loops). Value 3 starts with a zero weight and gradient and every state at the smallest normal
number, so that the decaying states turn subnormal there and the flush to +0 is checked too.

probes.py runs it for every kernel name it has no probe of its own for.
"""

from __future__ import annotations

import numpy as np

from xnet.backends.cpu_kernels import optim


def optimizer_probe(name: str, dtype: np.dtype) -> str | None:
    """Optimizer kernel `name` run once on 19 weights of `dtype`: None if it matches the reference, else the problem."""
    rng = np.random.default_rng(9)
    count = {"adam": 4, "sgd": 2, "sgd_momentum": 3, "rmsprop": 3, "adagrad": 3, "adadelta": 4, "lion": 3}.get(name, 4)
    arrays = [rng.standard_normal(19).astype(dtype) for _ in range(count)]
    if name not in ("sgd", "sgd_momentum", "lion"):
        arrays[-1] = np.abs(arrays[-1])  # squares' averages and sums (Adamax: its norm) are not negative
    if name == "adadelta":
        arrays[-2] = np.abs(arrays[-2])
    if name == "lion":
        arrays[1][:3] = arrays[2][:3] = -0.0  # an interpolation of -0.0: sign +0.0, so a -0.0 weight stays -0.0
        arrays[0][0] = -0.0
    arrays[0][3] = arrays[1][3] = 0.0  # g stays 0 under weight decay
    for state in arrays[2:]:
        state[3] = np.finfo(dtype).tiny
    want = [a.copy() for a in arrays]
    if name in REFERENCE_STEPS:
        calls = REFERENCE_STEPS[name](*want)
        return _run(name, dtype, arrays, want, calls)
    w, g, *st = want
    wd = 0.01
    g += wd * w
    if name == "adam":
        m, v = st
        m *= 0.9
        m += 0.1 * g
        _flush(m)
        sq = g * g
        sq *= 0.001
        v *= 0.999
        v += sq
        _flush(v)
        d = np.sqrt(v)
        d += 1e-8
        d = m / d
        d *= 0.003
        w -= d
        scalars = (0.9, 0.1, 0.999, 0.001, 1e-8, 0.003, wd, 1.0, 1)
    elif name == "adadelta":
        sq, acc = st
        sq *= 0.9
        sq += 0.1 * (g * g)
        _flush(sq)
        d = np.sqrt(acc + 1e-6)
        d /= np.sqrt(sq + 1e-6)
        d *= g
        acc *= 0.9
        acc += 0.1 * (d * d)
        _flush(acc)
        d *= 0.5
        w -= d
        scalars = (0.5, 0.9, 0.1, 1e-6, wd, 1)
    elif name == "sgd":
        w -= 0.1 * g
        scalars = (0.1, wd, 1)
    elif name == "sgd_momentum":
        (vel,) = st
        d = 0.1 * g
        vel *= 0.9
        vel -= d
        _flush(vel)
        w += vel
        scalars = (0.1, 0.9, wd, 1, 0)
    else:
        (acc,) = st
        if name == "rmsprop":
            sq = g * g
            sq *= 0.01
            acc *= 0.99
            acc += sq
            _flush(acc)
            scalars = (0.01, 0.99, 0.01, 1e-8, wd, 1)
        else:
            acc += g * g
            scalars = (0.01, 1e-10, wd, 1)
        d = np.sqrt(acc)
        d += scalars[-3]
        d = g / d
        d *= 0.01
        w -= d
    return _run(name, dtype, arrays, want, [scalars])


def _run(
    name: str, dtype: np.dtype, arrays: list[np.ndarray], want: list[np.ndarray], calls: list[tuple]
) -> str | None:
    """Kernel `name` called on `arrays` once per scalar tuple of `calls`; None if they end as `want`."""
    ints = optim.INT_SCALARS[name]
    for scalars in calls:
        typed = [int(v) if i in ints else dtype.type(v) for i, v in enumerate(scalars)]
        optim.OPTIMIZERS[name](*typed, *arrays)
    # the kernel updates in place: same shapes, so equal bits (NaN where NaN) is the whole check
    same = all(_same(a, b) for a, b in zip(arrays, want, strict=True))
    return None if same else "gave other updates"


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal values, NaN where NaN, and zeros of the same sign."""
    nan = np.isnan(a)
    return np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a) & ~nan, np.signbit(b) & ~nan)


def _flush(s: np.ndarray) -> None:
    """xnet/optim/arrays.py flush_subnormal: |s| below the smallest normal number -> +0, NaN kept."""
    s[np.abs(s) < np.finfo(s.dtype).tiny] = 0


def _moments(g: np.ndarray, m: np.ndarray, v: np.ndarray, b1: float, b2: float) -> None:
    m *= b1
    m += (1.0 - b1) * g
    _flush(m)
    v *= b2
    v += (1.0 - b2) * (g * g)
    _flush(v)


def _adamax(w: np.ndarray, g: np.ndarray, m: np.ndarray, u: np.ndarray) -> list[tuple]:
    g += 0.01 * w
    m *= 0.9
    m += 0.1 * g
    _flush(m)
    a = np.abs(g)
    a += 1e-8
    u *= 0.999
    u[...] = np.maximum(u, a)
    d = m / u
    d *= 0.02
    w -= d
    return [(0.9, 0.1, 0.999, 1e-8, 0.02, 0.01, 1)]


def _nadam(w: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray) -> list[tuple]:
    w *= 0.999  # decoupled
    _moments(g, m, v, 0.9, 0.999)
    d = np.sqrt(v)
    d /= 0.05
    d += 1e-8
    w -= 0.003 * (g / d)
    w -= 0.004 * (m / d)
    return [(0.9, 1.0 - 0.9, 0.999, 1.0 - 0.999, 1e-8, 0.05, 0.003, 0.004, 0.1, 0.999, 2)]


def _radam(w: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray) -> list[tuple]:
    calls = []
    for rectified in (0, 1):  # one call of each loop, the second on the first's result
        g += 0.01 * w
        _moments(g, m, v, 0.9, 0.999)
        if rectified:
            d = np.sqrt(v)
            d += 1e-8
            d = m / d
            d *= 0.003
            w -= d
        else:
            w -= 0.02 * m
        calls.append((0.9, 1.0 - 0.9, 0.999, 1.0 - 0.999, 1e-8, 0.003 if rectified else 0.02, rectified, 0.01, 1.0, 1))
    return calls


def _lion(w: np.ndarray, g: np.ndarray, m: np.ndarray) -> list[tuple]:
    c = 0.9 * m
    c += 0.1 * g
    w *= 0.999
    w -= 0.001 * np.sign(c)
    m *= 0.99
    m += 0.01 * g
    _flush(m)
    return [(0.001, 0.9, 0.1, 0.99, 0.01, 1.0, 0.999, 2)]


# the kernels whose probe is written per optimizer: the reference steps on (w, g, *state), and the kernel's calls
REFERENCE_STEPS = {"adamax": _adamax, "nadam": _nadam, "radam": _radam, "lion": _lion}
