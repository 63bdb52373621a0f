"""Fused optimizer updates over flat arrays: the operations of xnet/optim/*.py in the same order.

Same arguments as cuda_optim_kernels.OPTIMIZER_KERNELS (scalars first, in fast_paths.OPTIMIZER_SCALARS
order and of the arrays' dtype, then the arrays it updates in place); NumpyBackend.adam_update and
its siblings launch them. Each element sees the
reference's roundings one by one (no FMA: Numba does not contract without fastmath), so results
are bit-identical to the Array API body.
"""

from __future__ import annotations

import numpy as np

from xnet.backends.cpu_kernels.flags import plain


@plain
def _gradient(param, grad, i, wd, decay):
    """grad[i], with coupled weight decay (decay 1) added to it in place as the reference's `g += wd * w`."""
    g = grad[i]
    if decay == 1:
        g += wd * param[i]
        grad[i] = g
    return g


@plain
def _root_scaled(g, acc, eps, lr):
    """lr * g / (sqrt(acc) + eps), rounded step by step as RMSprop's and Adagrad's bodies round it."""
    d = np.sqrt(acc)
    d += eps
    d = g / d
    d *= lr
    return d


@plain
def adam(b1, one_minus_b1, b2, one_minus_b2, eps_hat, step_size, wd, shrink, decay, param, grad, m, v):
    """Adam._rule's reference on flat arrays (decay 1: coupled, 2: decoupled)."""
    for i in range(param.shape[0]):
        g = _gradient(param, grad, i, wd, decay)
        if decay == 2:
            param[i] *= shrink
        mi = m[i] * b1
        mi += one_minus_b1 * g
        sq = g * g
        sq *= one_minus_b2
        vi = v[i] * b2
        vi += sq
        d = np.sqrt(vi)
        d += eps_hat
        d = mi / d
        d *= step_size
        m[i], v[i] = mi, vi
        param[i] -= d


@plain
def sgd(lr, wd, decay, param, grad):
    """SGD._rule's reference without momentum."""
    for i in range(param.shape[0]):
        g = _gradient(param, grad, i, wd, decay)
        param[i] -= lr * g


@plain
def sgd_momentum(lr, mu, wd, decay, nesterov, param, grad, velocity):
    """SGD._rule's reference with momentum (nesterov 1: the look-ahead form)."""
    for i in range(param.shape[0]):
        g = _gradient(param, grad, i, wd, decay)
        d = lr * g
        vel = velocity[i] * mu
        vel -= d
        velocity[i] = vel
        if nesterov:
            p = param[i] - d
            param[i] = p + mu * vel
        else:
            param[i] += vel


@plain
def rmsprop(lr, rho, one_minus_rho, eps, wd, decay, param, grad, mean_sq):
    """RMSprop._rule's reference."""
    for i in range(param.shape[0]):
        g = _gradient(param, grad, i, wd, decay)
        sq = g * g
        sq *= one_minus_rho
        ms = mean_sq[i] * rho
        ms += sq
        mean_sq[i] = ms
        param[i] -= _root_scaled(g, ms, eps, lr)


@plain
def adagrad(lr, eps, wd, decay, param, grad, sum_sq):
    """Adagrad._rule's reference."""
    for i in range(param.shape[0]):
        g = _gradient(param, grad, i, wd, decay)
        s = sum_sq[i] + g * g
        sum_sq[i] = s
        param[i] -= _root_scaled(g, s, eps, lr)


OPTIMIZERS = {"adam": adam, "sgd": sgd, "sgd_momentum": sgd_momentum, "rmsprop": rmsprop, "adagrad": adagrad}
# which of a kernel's arguments are integers (the rest of the scalars take the arrays' dtype)
INT_SCALARS = {"adam": {8}, "sgd": {2}, "sgd_momentum": {3, 4}, "rmsprop": {5}, "adagrad": {3}}
