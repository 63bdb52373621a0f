"""Fused optimizer updates over flat arrays: the operations of xnet/optim/*.py in the same order.

Same arguments as cuda_optim_kernels.OPTIMIZER_KERNELS (scalars first, in fast_paths.OPTIMIZER_SCALARS
order and of the arrays' dtype, then the arrays it updates in place); NumpyBackend.adam_update and
its siblings launch them. Each element sees the reference's roundings one by one (no FMA: Numba
does not contract without fastmath), so results are bit-identical to the Array API body, and each
decaying state value is flushed to +0 below its dtype's smallest normal where the body flushes it
(xnet/optim/arrays.py flush_subnormal: subnormals cost a microcode assist per operation on x86).
"""

from __future__ import annotations

import numpy as np

from xnet.backends.cpu_kernels.flags import plain


@plain
def _decay(param, grad, wd, shrink, decay):
    """Weight decay as its own pass before the update, as the reference does it: coupled (decay 1)
    `g += wd * w` kept in grad, decoupled (decay 2) `w *= shrink`.

    A separate loop, not a branch in the update's: a conditional store in the loop body kept LLVM
    from vectorising it (Adam over 200,704 float32 values: 0.48 ms with it, 0.07 ms without)."""
    if decay == 1:
        for i in range(param.shape[0]):
            grad[i] += wd * param[i]
    elif decay == 2:
        for i in range(param.shape[0]):
            param[i] *= shrink


@plain
def _limits(a):
    """(smallest normal, +0) of a's dtype, as scalars of that dtype (np.finfo's tiny is typed so in Numba)."""
    return np.finfo(a.dtype).tiny, a.dtype.type(0)


@plain
def _flushed(x, tiny, zero):
    """x, or +0 where |x| < tiny (the subnormals and -0); NaN fails the comparison and is kept. A select
    on x, not arithmetic with it, so the loop stays vectorised and never computes with a subnormal."""
    return zero if abs(x) < tiny else x


@plain
def _root_scaled(g, acc, eps, lr):
    """lr * g / (sqrt(acc) + eps), rounded step by step as RMSprop's and Adagrad's bodies round it."""
    d = np.sqrt(acc)
    d += eps
    d = g / d
    d *= lr
    return d


@plain
def _decayed_square(avg, g, rho, one_minus_rho):
    """avg * rho + (1 - rho) * g^2, rounded step by step as RMSprop's and Adadelta's bodies round it."""
    sq = g * g
    sq *= one_minus_rho
    a = avg * rho
    a += sq
    return a


@plain
def _moment(avg, g, beta, one_minus_beta):
    """avg * beta + (1 - beta) * g, rounded step by step as the Adam family's bodies round it."""
    a = avg * beta
    a += one_minus_beta * g
    return a


@plain
def adam(b1, one_minus_b1, b2, one_minus_b2, eps_hat, step_size, wd, shrink, decay, param, grad, m, v):
    """Adam._rule's reference on flat arrays (decay 1: coupled, 2: decoupled)."""
    _decay(param, grad, wd, shrink, decay)
    tiny, zero = _limits(m)
    for i in range(param.shape[0]):
        g = grad[i]
        mi = m[i] * b1
        mi += one_minus_b1 * g
        mi = _flushed(mi, tiny, zero)
        sq = g * g
        sq *= one_minus_b2
        vi = v[i] * b2
        vi += sq
        vi = _flushed(vi, tiny, zero)
        d = np.sqrt(vi)
        d += eps_hat
        d = mi / d
        d *= step_size
        m[i], v[i] = mi, vi
        param[i] -= d


@plain
def sgd(lr, wd, decay, param, grad):
    """SGD._rule's reference without momentum."""
    _decay(param, grad, wd, wd, decay)
    for i in range(param.shape[0]):
        param[i] -= lr * grad[i]


@plain
def sgd_momentum(lr, mu, wd, decay, nesterov, param, grad, velocity):
    """SGD._rule's reference with momentum (nesterov 1: the look-ahead form)."""
    _decay(param, grad, wd, wd, decay)
    tiny, zero = _limits(velocity)
    if nesterov:  # two loops, so that neither has a branch
        for i in range(param.shape[0]):
            d = lr * grad[i]
            vel = velocity[i] * mu
            vel -= d
            vel = _flushed(vel, tiny, zero)
            velocity[i] = vel
            p = param[i] - d
            param[i] = p + mu * vel
    else:
        for i in range(param.shape[0]):
            vel = velocity[i] * mu
            vel -= lr * grad[i]
            vel = _flushed(vel, tiny, zero)
            velocity[i] = vel
            param[i] += vel


@plain
def rmsprop(lr, rho, one_minus_rho, eps, wd, decay, param, grad, mean_sq):
    """RMSprop._rule's reference."""
    _decay(param, grad, wd, wd, decay)
    tiny, zero = _limits(mean_sq)
    for i in range(param.shape[0]):
        g = grad[i]
        ms = _flushed(_decayed_square(mean_sq[i], g, rho, one_minus_rho), tiny, zero)
        mean_sq[i] = ms
        param[i] -= _root_scaled(g, ms, eps, lr)


@plain
def adagrad(lr, eps, wd, decay, param, grad, sum_sq):
    """Adagrad._rule's reference."""
    _decay(param, grad, wd, wd, decay)
    for i in range(param.shape[0]):
        g = grad[i]
        s = sum_sq[i] + g * g
        sum_sq[i] = s
        param[i] -= _root_scaled(g, s, eps, lr)


@plain
def adadelta(lr, rho, one_minus_rho, eps, wd, decay, param, grad, square_avg, acc_delta):
    """Adadelta._rule's reference (optim/adadelta.py) on flat arrays."""
    _decay(param, grad, wd, wd, decay)
    tiny, zero = _limits(square_avg)
    for i in range(param.shape[0]):
        g = grad[i]
        s = _flushed(_decayed_square(square_avg[i], g, rho, one_minus_rho), tiny, zero)
        square_avg[i] = s
        d = np.sqrt(acc_delta[i] + eps)
        d /= np.sqrt(s + eps)
        d *= g
        acc_delta[i] = _flushed(_decayed_square(acc_delta[i], d, rho, one_minus_rho), tiny, zero)
        d *= lr
        param[i] -= d


@plain
def adamax(b1, one_minus_b1, b2, eps, step_size, wd, decay, param, grad, m, u):
    """Adamax._rule's reference (optim/adamax.py): u = max(b2 * u, |g| + eps), NaN from either side as np.maximum."""
    _decay(param, grad, wd, wd, decay)
    tiny, zero = _limits(m)
    for i in range(param.shape[0]):
        g = grad[i]
        mi = _flushed(_moment(m[i], g, b1, one_minus_b1), tiny, zero)  # u >= eps: never subnormal
        a = np.abs(g)
        a += eps
        ui = u[i] * b2
        ui = ui if ui >= a or ui != ui else a  # a select, not a branch: the loop stays vectorised
        d = mi / ui
        d *= step_size
        m[i], u[i] = mi, ui
        param[i] -= d


@plain
def nadam(b1, one_minus_b1, b2, one_minus_b2, eps, sqrt_bc2, grad_step, momentum_step, wd, shrink, decay,
          param, grad, m, v):  # fmt: skip
    """NAdam._rule's reference (optim/nadam.py); the momentum schedule's steps come from the host."""
    _decay(param, grad, wd, shrink, decay)
    tiny, zero = _limits(m)
    for i in range(param.shape[0]):
        g = grad[i]
        mi = _flushed(_moment(m[i], g, b1, one_minus_b1), tiny, zero)
        vi = _flushed(_decayed_square(v[i], g, b2, one_minus_b2), tiny, zero)
        d = np.sqrt(vi)
        d /= sqrt_bc2
        d += eps
        w = param[i] - grad_step * (g / d)
        w -= momentum_step * (mi / d)
        m[i], v[i] = mi, vi
        param[i] = w


@plain
def radam(b1, one_minus_b1, b2, one_minus_b2, eps, step_size, rectified, wd, shrink, decay, param, grad, m, v):
    """RAdam._rule's reference (optim/radam.py): rectified 1, the adaptive step; 0, momentum SGD
    (the early steps, whose variance estimate is not tractable)."""
    if rectified:  # Adam's update, operation for operation, with eps where Adam has eps_hat
        adam(b1, one_minus_b1, b2, one_minus_b2, eps, step_size, wd, shrink, decay, param, grad, m, v)
        return
    _decay(param, grad, wd, shrink, decay)
    tiny, zero = _limits(m)
    for i in range(param.shape[0]):
        g = grad[i]
        mi = _flushed(_moment(m[i], g, b1, one_minus_b1), tiny, zero)
        m[i], v[i] = mi, _flushed(_decayed_square(v[i], g, b2, one_minus_b2), tiny, zero)
        param[i] -= step_size * mi


@plain
def lion(lr, b1, one_minus_b1, b2, one_minus_b2, wd, shrink, decay, param, grad, m):
    """Lion._rule's reference (optim/lion.py). Its decay (decoupled) may run first: c reads m and g only."""
    _decay(param, grad, wd, shrink, decay)
    tiny, zero = _limits(m)
    for i in range(param.shape[0]):
        g = grad[i]
        c = _moment(m[i], g, b1, one_minus_b1)
        # lr * np.sign(c), exactly: lr, -lr, +0 for either zero (c - c), NaN for NaN. Numba's
        # np.sign gives -0.0 for -0.0 (NumPy +0.0), which would flip the sign of a -0.0 weight
        param[i] -= lr if c > 0 else (-lr if c < 0 else c - c)
        m[i] = _flushed(_moment(m[i], g, b2, one_minus_b2), tiny, zero)


OPTIMIZERS = {
    "adam": adam,
    "sgd": sgd,
    "sgd_momentum": sgd_momentum,
    "rmsprop": rmsprop,
    "adagrad": adagrad,
    "adadelta": adadelta,
    "adamax": adamax,
    "nadam": nadam,
    "radam": radam,
    "lion": lion,
}
# which of a kernel's arguments are integers (the rest of the scalars take the arrays' dtype)
INT_SCALARS = {
    "adam": {8}, "sgd": {2}, "sgd_momentum": {3, 4}, "rmsprop": {5}, "adagrad": {3}, "adadelta": {5},
    "adamax": {6}, "nadam": {10}, "radam": {6, 9}, "lion": {7},
}  # fmt: skip
