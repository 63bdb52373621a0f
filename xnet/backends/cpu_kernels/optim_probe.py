"""The first-use check of the optimizer kernels (optim.py): the reference bodies of xnet/optim, written
out with NumPy for the probe's small arrays, against one call of the compiled kernel.

probes.py runs it for every kernel name it has no probe of its own for.
"""

from __future__ import annotations

import numpy as np

from xnet.backends.cpu_kernels import optim


def optimizer_probe(name: str, dtype: np.dtype) -> str | None:
    """Optimizer kernel `name` run once on 19 weights of `dtype`: None if it matches the reference, else the problem."""
    rng = np.random.default_rng(9)
    count = {"adam": 4, "sgd": 2, "sgd_momentum": 3, "rmsprop": 3, "adagrad": 3, "adadelta": 4}[name]
    arrays = [rng.standard_normal(19).astype(dtype) for _ in range(count)]
    if name in ("adam", "rmsprop", "adagrad", "adadelta"):
        arrays[-1] = np.abs(arrays[-1])  # squares' averages and sums are not negative
    if name == "adadelta":
        arrays[-2] = np.abs(arrays[-2])
    want = [a.copy() for a in arrays]
    w, g, *st = want
    wd = 0.01
    g += wd * w
    if name == "adam":
        m, v = st
        m *= 0.9
        m += 0.1 * g
        sq = g * g
        sq *= 0.001
        v *= 0.999
        v += sq
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
        d = np.sqrt(acc + 1e-6)
        d /= np.sqrt(sq + 1e-6)
        d *= g
        acc *= 0.9
        acc += 0.1 * (d * d)
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
        w += vel
        scalars = (0.1, 0.9, wd, 1, 0)
    else:
        (acc,) = st
        if name == "rmsprop":
            sq = g * g
            sq *= 0.01
            acc *= 0.99
            acc += sq
            scalars = (0.01, 0.99, 0.01, 1e-8, wd, 1)
        else:
            acc += g * g
            scalars = (0.01, 1e-10, wd, 1)
        d = np.sqrt(acc)
        d += scalars[-3]
        d = g / d
        d *= 0.01
        w -= d
    ints = optim.INT_SCALARS[name]
    typed = [int(v) if i in ints else dtype.type(v) for i, v in enumerate(scalars)]
    optim.OPTIMIZERS[name](*typed, *arrays)
    # the kernel updates in place: same shapes, so equal values (NaN where NaN) is the whole check
    same = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(arrays, want, strict=True))
    return None if same else "gave other updates"
