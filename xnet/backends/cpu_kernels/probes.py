"""First-use checks: each kernel, per dtype, run once on a small input against NumPy doing the reference's steps.

Compiling happens here (or loading from Numba's cache). A kernel that raises or gives other numbers
warns once, naming itself and XNET_CPU_KERNELS=0, and the reference body runs from then on. A
cache that fails to load (a corrupt or foreign file) is dropped and the kernel compiled afresh
before it counts as failed.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from xnet.backends.cpu_kernels import direct_conv, norm_pool, rows, windows, winograd, winograd_grad
from xnet.backends.cpu_kernels.optim_probe import optimizer_probe

# the kernel modules, as Numba names their cache files
MODULES = ("direct_conv.", "norm_pool.", "optim.", "rows.", "windows.", "winograd.", "winograd_grad.")
_lock = threading.Lock()
_verdicts: dict[tuple[str, Any], bool] = {}  # (kernel, dtype) -> passed


def ok(name: str, dtype: Any) -> bool:
    """Whether kernel `name` may run on `dtype`: probed once per process, warned once when not."""
    key = (name, np.dtype(dtype))
    verdict = _verdicts.get(key)
    if verdict is None:
        with _lock:
            if key not in _verdicts:
                _verdicts[key] = _check(name, key[1])
            verdict = _verdicts[key]
    return verdict


def _check(name: str, dtype: np.dtype) -> bool:
    probe = PROBES.get(name) or (lambda dt: optimizer_probe(name, dt))
    try:
        problem = _with_fresh_cache_on_error(name, lambda: probe(dtype))
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0]
        problem = f"failed ({e.__class__.__name__}: {first})"
    if problem is None:
        return True
    warnings.warn(
        f"xnet's compiled CPU kernel {name} ({dtype}) {problem}; the Array API reference runs instead "
        "(XNET_CPU_KERNELS=0 turns the compiled kernels off)",
        RuntimeWarning,
        stacklevel=4,
    )
    return False


def _with_fresh_cache_on_error(name: str, run: Callable[[], str | None]) -> str | None:
    """run(); if it raises (a corrupt or foreign cache file fails to load), delete the kernels'
    cache files, so that Numba compiles afresh and writes new ones, and run once more."""
    try:
        return run()
    except Exception:
        # Numba's cache folder for this package (a Dispatcher's _cache._cache_path, numba/core/caching.py)
        folder = getattr(getattr(norm_pool.forward, "_cache", None), "_cache_path", None)
        if folder and os.path.isdir(folder):
            for file in os.listdir(folder):
                if file.startswith(MODULES) and file.endswith((".nbi", ".nbc")):
                    with contextlib.suppress(OSError):
                        os.remove(os.path.join(folder, file))
        return run()


def _same(got: np.ndarray, want: np.ndarray) -> bool:
    return got.shape == want.shape and bool(np.array_equal(got, want, equal_nan=True))


def _close(got: np.ndarray, want: np.ndarray) -> bool:
    rtol = 1e-4 if np.float32 in (got.dtype, want.dtype) else 1e-10
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=rtol, atol=rtol, equal_nan=True))


def _pool_input(dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.integers(-3, 4, (3, 2, 4, 6)).astype(dtype)  # small integers: ties in windows
    x[0, 0, 0, 0] = np.nan
    return x, np.array([0.5, -1.5], dtype), np.array([0.25, 1.0], dtype)


def _reference_pool(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)
    N, C, H, W = x.shape
    q = z.reshape(N, C, H // 2, 2, W // 2, 2)
    a, b, c, d = q[:, :, :, 0, :, 0], q[:, :, :, 0, :, 1], q[:, :, :, 1, :, 0], q[:, :, :, 1, :, 1]
    m = np.maximum(np.maximum(a, b), np.maximum(c, d))
    na, nb, nc = ((v != m).astype(np.uint8) for v in (a, b, c))
    winner = na * (nb * (nc + 1) + 1) + (m <= 0).astype(np.uint8) * 4
    return m * (m > 0).astype(m.dtype), winner


def _norm_relu_pool(dtype: np.dtype) -> str | None:
    x, scale, shift = _pool_input(dtype)
    want_y, want_w = _reference_pool(x, scale, shift)
    y, w = np.empty_like(want_y), np.empty_like(want_w)
    norm_pool.forward(x, scale, shift, True, y, w, 0, x.shape[0])
    return None if _same(y, want_y) and _same(w, want_w) else "gave other maxima or winners"


def _routed(g: np.ndarray, winner: np.ndarray) -> np.ndarray:
    N, C, Ho, Wo = g.shape
    dz = np.empty((N, C, Ho, 2, Wo, 2), g.dtype)
    for k, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        dz[:, :, :, i, :, j] = g * (winner == k).astype(g.dtype)
    return dz.reshape(N, C, 2 * Ho, 2 * Wo)


def _pool_grad(dtype: np.dtype) -> str | None:
    x, scale, shift = _pool_input(dtype)
    x[0, 0, 0, 0] = 1.0
    _, winner = _reference_pool(x, scale, shift)
    g = np.random.default_rng(6).standard_normal(winner.shape).astype(dtype)
    mean, k, c = np.array([0.1, -0.2], dtype), np.array([0.3, 0.7], dtype), np.array([-0.05, 0.02], dtype)
    dz, b = _routed(g, winner), (lambda v: v.reshape(1, -1, 1, 1))
    dot, total = np.empty(2), np.empty(2)
    norm_pool.grad_sums(g, x, winner, mean, dot, total, 0, x.shape[0])
    if not (_close(dot, np.sum(dz * (x - b(mean)), axis=(0, 2, 3))) and _close(total, np.sum(dz, axis=(0, 2, 3)))):
        return "gave other gradient sums"
    dx = np.empty_like(x)
    norm_pool.grad_input(g, x, winner, mean, scale, k, c, 2, dx, 0, x.shape[0])
    return None if _same(dx, dz * b(scale) - (x - b(mean)) * b(k) - b(c)) else "gave another input gradient"


def _moments(dtype: np.dtype) -> str | None:
    x, _, _ = _pool_input(dtype)
    x[0, 0, 0, 0] = 2.5
    mu, m2 = np.empty(2), np.empty(2)
    norm_pool.moments(x, mu, m2, 0, x.shape[0])
    M = x.size // 2
    ok = _close(mu, x.mean(axis=(0, 2, 3))) and _close(m2 / M, x.var(axis=(0, 2, 3)))
    return None if ok else "gave other means or variances"


def _windows(dtype: np.dtype, backward: bool) -> str | None:
    x = np.random.default_rng(4).standard_normal((2, 4, 7, 6)).astype(dtype)  # (N, C, Hp, Wp), 2 groups
    (kh, kw), (sh, sw), (dh, dw) = (2, 3), (2, 1), (1, 2)
    Ho, Wo = (7 - dh * (kh - 1) - 1) // sh + 1, (6 - dw * (kw - 1) - 1) // sw + 1
    want = np.empty((2, kh, kw, 2, 2, Ho, Wo), dtype)
    back = np.zeros((4, 2, 7, 6), dtype)
    for i in range(kh):
        for j in range(kw):
            block = x[:, :, i * dh : i * dh + sh * (Ho - 1) + 1 : sh, j * dw : j * dw + sw * (Wo - 1) + 1 : sw]
            want[:, i, j] = block.transpose(1, 0, 2, 3).reshape(2, 2, 2, Ho, Wo)
            back[:, :, i * dh : i * dh + sh * (Ho - 1) + 1 : sh, j * dw : j * dw + sw * (Wo - 1) + 1 : sw] += (
                want[:, i, j].reshape(4, 2, Ho, Wo)
            )
    if backward:  # compiled only where a backward pass asks for it (inference needs im2col alone)
        got_back = np.empty_like(back)
        windows.col2im(want, sh, sw, dh, dw, got_back)
        return None if _same(got_back, back) else "gave other sums of windows"
    got = np.empty_like(want)
    windows.im2col(x, sh, sw, dh, dw, got)
    return None if _same(got, want) else "gave other windows"


def _direct_conv(dtype: np.dtype, backward: bool) -> str | None:
    rng = np.random.default_rng(3)
    x = rng.integers(-2, 3, (2, 2, 5, 6)).astype(dtype)  # small integers: exact sums in either order
    w, b = rng.integers(-2, 3, (3, 2, 2, 3)).astype(dtype), np.array([0.5, -1.0, 0.0], dtype)
    xpad = np.zeros((2, 2, 7, 7), dtype)
    xpad[:, :, 1:6, 0:6] = x  # pads: top 1, bottom 1, left 0, right 1
    Ho, Wo = 6, 5
    # (N, C, 6 taps, Ho, Wo)
    cols = np.stack([xpad[:, :, i : i + Ho, j : j + Wo] for i in range(2) for j in range(3)], axis=2)
    if not backward:
        y = np.empty((2, 3, Ho, Wo), dtype)
        direct_conv.forward(xpad, w, b, y, 0, 2)
        want = np.einsum("ncthw,oct->nohw", cols, w.reshape(3, 2, 6)) + b.reshape(1, 3, 1, 1)
        return None if _same(y, want) else "gave other outputs"
    g = rng.integers(-2, 3, (2, 3, Ho, Wo)).astype(dtype)
    want_dw = np.einsum("nohw,ncthw->oct", g, cols).reshape(w.shape)
    dcols = np.einsum("nohw,oct->ncthw", g, w.reshape(3, 2, 6))
    dxpad = np.zeros_like(xpad)
    for t, (i, j) in enumerate((i, j) for i in range(2) for j in range(3)):
        dxpad[:, :, i : i + Ho, j : j + Wo] += dcols[:, :, t]
    dw, db, dx = np.empty_like(w), np.empty(3, dtype), np.empty_like(x)
    direct_conv.backward(xpad, w, g, 1, 0, dw, db, dx, True, 0, 2)
    ok = _same(dw, want_dw) and _same(db, g.sum(axis=(0, 2, 3))) and _same(dx, dxpad[:, :, 1:6, 0:6])
    return None if ok else "gave other gradients"


def _winograd(dtype: np.dtype) -> str | None:
    rng = np.random.default_rng(4)
    # small integers: every transform, product and sum is exact, so the bits must be the convolution's
    xpad = np.zeros((2, 3, 6, 8), dtype)
    xpad[:, :, 1:5, 1:7] = rng.integers(-2, 3, (2, 3, 4, 6))
    w, b = rng.integers(-2, 3, (5, 3, 3, 3)).astype(dtype), np.array([0.5, -1.0, 0.0, 2.0, 0.25], dtype)
    cols = np.stack([xpad[:, :, i : i + 4, j : j + 6] for i in range(3) for j in range(3)], axis=2)
    want = np.einsum("ncthw,oct->nohw", cols, w.reshape(5, 3, 9)) + b.reshape(1, 5, 1, 1)
    T = 12  # tiles: 2 samples of 2 x 3
    Vp, Mp = winograd.tile_planes(T * 3, dtype), winograd.tile_planes(T * 5, dtype)
    winograd.input_tiles(xpad, Vp, np.empty((4, 3 * 4 * 3), dtype), 0, 2)
    Ut = np.ascontiguousarray(winograd.weight_transform(w).transpose(0, 2, 1))
    np.matmul(winograd.planes_as(Vp, T, 3), Ut, out=winograd.planes_as(Mp, T, 5))
    y = np.empty((2, 5, 4, 6), dtype)
    winograd.output_tiles(Mp, np.empty((8, T * 5), dtype), np.empty((2, 3 * 5), dtype), b, y, 0, 2)
    return None if _same(y, want) else "gave other outputs"


def _winograd_backward(dtype: np.dtype) -> str | None:
    rng = np.random.default_rng(5)
    # small integers again, so that every step is exact: pads top 1, bottom 0, left 1, right 1
    xpad = np.zeros((2, 3, 6, 8), dtype)
    xpad[:, :, 1:6, 1:7] = rng.integers(-2, 3, (2, 3, 5, 6))
    w, g = rng.integers(-2, 3, (5, 3, 3, 3)).astype(dtype), rng.integers(-2, 3, (2, 5, 4, 6)).astype(dtype)
    cols = np.stack([xpad[:, :, i : i + 4, j : j + 6] for i in range(3) for j in range(3)], axis=2)
    want_dw = np.einsum("nohw,ncthw->oct", g, cols).reshape(w.shape)
    dcols = np.einsum("nohw,oct->ncthw", g, w.reshape(5, 3, 9))
    dxpad = np.zeros_like(xpad)
    for t, (i, j) in enumerate((i, j) for i in range(3) for j in range(3)):
        dxpad[:, :, i : i + 4, j : j + 6] += dcols[:, :, t]
    T, X4 = 12, np.empty((4, 3 * 4 * 3), dtype)  # tiles: 2 samples of 2 x 3
    Vp, Dp, db = winograd.tile_planes(T * 3, dtype), winograd.tile_planes(T * 5, dtype), np.empty((5,), dtype)
    winograd.input_tiles(xpad, Vp, X4, 0, 2)
    winograd_grad.grad_tiles(g, Dp, np.empty((4, T * 5), dtype), 0, 2)
    winograd_grad.channel_sums(g, 0, 2, db)
    D = winograd.planes_as(Dp, T, 5)
    dw = winograd_grad.weight_gradient(np.matmul(winograd.planes_as(Vp, T, 3).transpose(0, 2, 1), D))
    dVp = winograd.tile_planes(T * 3, dtype)
    np.matmul(D, winograd.weight_transform(w), out=winograd.planes_as(dVp, T, 3))
    dx = np.empty((2, 3, 5, 6), dtype)
    winograd_grad.input_grad(dVp, Vp, X4, dx, 2, 3, 1, 1, 0, 2)
    ok = _same(dw, want_dw) and _same(db, g.sum(axis=(0, 2, 3))) and _same(dx, dxpad[:, :, 1:6, 1:7])
    return None if ok else "gave other gradients"


def _dropout(dtype: np.dtype) -> str | None:
    x = np.linspace(-2.0, 2.0, 37).astype(dtype)
    words = np.random.default_rng(7).integers(0, 2**63, 37, dtype=np.uint64) * np.uint64(2)
    threshold, scale = int(0.7 * 2.0**53), 1.0 / 0.7
    want = ((words >> np.uint64(11)) < threshold).astype(dtype)
    want *= scale
    y, mask = np.empty_like(x), np.empty_like(x)
    rows.dropout(x, words, np.uint64(threshold), dtype.type(scale), y, mask)
    return None if _same(mask, want) and _same(y, x * want) else "gave another mask or output"


def _softmax_cross_entropy(dtype: np.dtype) -> str | None:
    z = np.random.default_rng(8).standard_normal((5, 7)).astype(dtype) * 4
    z[2, 5] = z[2, 3] = z[2].max() + 1  # a tie: the first of the largest is the prediction
    labels = np.array([0, 6, 3, 3, 1], np.int64)
    s, scale = 0.1, 0.2
    q = np.eye(7, dtype=dtype)[labels] * (1.0 - s) + s / 7
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    se = e.sum(axis=1, keepdims=True)
    want_t, want_g = np.log(se[:, 0]) - np.sum(q * shifted, axis=1), (e / se - q) * scale
    t = dtype.type
    terms, grad = np.empty((5,), dtype), np.empty((5, 7), dtype)
    hits = rows.ce_labels(z, labels, t(1.0 - s), t(s / 7), t(scale), terms, grad, 0, 5)
    if hits != np.count_nonzero(np.argmax(z, axis=1) == labels):
        return "counted other right predictions"
    return None if _close(terms, want_t) and _close(grad, want_g) else "gave other terms or gradients"


def _relu(dtype: np.dtype) -> str | None:
    x = np.array([-2.0, -0.0, 0.0, 0.5, 3.0, np.nan, np.inf, -np.inf, 1e-39], dtype)
    mask = (x > 0).astype(dtype)
    y, got = np.empty_like(x), np.empty_like(x)
    rows.relu(x, dtype.type(1), y, got)
    with np.errstate(invalid="ignore"):  # -inf * 0 is NaN, as in the reference
        want = x * mask
    return None if _same(got, mask) and _same(y, want) else "gave another mask or output"


def _bias_relu(dtype: np.dtype) -> str | None:
    z = np.array([[-2.0, -0.0, 0.0, 0.5, 3.0], [np.nan, np.inf, -np.inf, 1e-39, -1.0]], dtype)
    bias = np.array([1.0, 0.0, -0.0, -0.5, 2.0], dtype)
    for b in (bias, None):
        v = z + b if b is not None else z.copy()
        with np.errstate(invalid="ignore"):  # -inf * 0 is NaN, as in the reference
            want = v * (v > 0).astype(dtype)
        got = z.copy()
        rows.bias_relu(got, b if b is not None else bias[:0], b is not None, dtype.type(1), 0, 2)
        if not (_same(got, want) and np.array_equal(np.signbit(got), np.signbit(want))):
            return "gave other outputs"
    return None


def _activation_grad(dtype: np.dtype) -> str | None:
    rng = np.random.default_rng(9)
    g = rng.standard_normal((3, 5)).astype(dtype)
    g[0, 0] = -0.0
    y = np.array([[-0.0, 0.0, 0.25, 0.9, np.nan], [0.5, -0.75, 1e-39, 0.999, 0.1], [0.3, 0.6, -0.2, 0.0, 2.0]], dtype)
    wants = ((y > 0).astype(dtype), y * (1.0 - y), 1.0 - y * y)  # the slopes ReLU, Sigmoid and Tanh use
    for code, slope in enumerate(wants):
        want = g * slope
        gz, sums = np.empty_like(g), np.empty(5, dtype)
        rows.activation_grad(g, y, code, dtype.type(1), gz, sums, 0, 3)
        if not (_same(gz, want) and _same(sums, want.sum(axis=0))):
            return "gave other gradients or sums"
    return None


def _take_normalized(dtype: np.dtype) -> str | None:
    raw = np.arange(256, dtype=np.uint8)[::-1].reshape(8, 32).copy()
    index = np.array([3, 0, 7, 3], np.int64)
    for offset, scale in ((0.0, 255.0), (127.5, 255.0), (33.318421449829934, 78.56748998339798), (0.0, 1.0)):
        want = raw[index].astype(np.float32)
        if offset != 0:
            want -= np.float32(offset)
        if scale != 1:
            want /= np.float32(scale)
        got = np.empty_like(want)
        off, sc = np.float32(offset), np.float32(scale)
        rows.take_scaled(raw, index, off, sc, off != 0, sc != 1, got)
        if not _same(got, want):
            return "gave other normalised pixels"
    return None


PROBES: dict[str, Callable[[np.dtype], str | None]] = {
    "norm_relu_pool": _norm_relu_pool,
    "pool_grad": _pool_grad,
    "moments": _moments,
    "im2col": lambda dtype: _windows(dtype, False),
    "col2im": lambda dtype: _windows(dtype, True),
    "direct_conv": lambda dtype: _direct_conv(dtype, False),
    "direct_conv_backward": lambda dtype: _direct_conv(dtype, True),
    "winograd": _winograd,
    "winograd_backward": _winograd_backward,
    "dropout": _dropout,
    "softmax_cross_entropy": _softmax_cross_entropy,
    "take_normalized": _take_normalized,
    "relu": _relu,
    "bias_relu": _bias_relu,
    "activation_grad": _activation_grad,
}


def reset() -> None:
    """Forget the verdicts (tests)."""
    with _lock:
        _verdicts.clear()
