"""A float64 finite-difference gradient check used by every layer and loss test."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xnet.backends import Backend


def numerical_grad(f: Callable[[], float], arr, backend: Backend, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f() with respect to every element of `arr` (in place)."""
    host = backend.to_numpy(arr).astype(np.float64)
    grad = np.zeros_like(host)
    flat = host.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        arr[...] = backend.asarray(host, arr.dtype)
        f_plus = f()
        flat[i] = old - eps
        arr[...] = backend.asarray(host, arr.dtype)
        f_minus = f()
        flat[i] = old
        grad.reshape(-1)[i] = (f_plus - f_minus) / (2 * eps)
    arr[...] = backend.asarray(host, arr.dtype)
    return grad


def gradient_check(module, x, backend: Backend, rtol: float = 1e-5, atol: float = 1e-7, seed: int = 1):
    """Check module.backward against finite differences for the input and every parameter.

    The scalar is sum(forward(x) * R) for a fixed random R, so every output element matters.
    `x` must be a float64 device array; the module must be built in float64.
    """
    y = module.forward(x)
    r = backend.asarray(np.random.default_rng(seed).standard_normal(tuple(y.shape)), "float64")
    xp = backend.xp

    def f() -> float:
        return float(backend.to_numpy(xp.sum(module.forward(x) * r)))

    module.zero_grad()
    module.forward(x)
    dx = backend.to_numpy(module.backward(r))
    analytic = {n: backend.to_numpy(p.grad).copy() for n, p in module.named_parameters()}
    np.testing.assert_allclose(dx, numerical_grad(f, x, backend), rtol=rtol, atol=atol, err_msg="input")
    for name, p in module.named_parameters():
        np.testing.assert_allclose(
            analytic[name], numerical_grad(f, p.data, backend), rtol=rtol, atol=atol, err_msg=name
        )
