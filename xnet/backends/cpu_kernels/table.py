"""The compiled kernels as the NumPy backend calls them: outputs allocated, the batch shared out over threads.

Imported only by loader.kernels() (it imports Numba). Every entry point returns None where its
kernel does not take the arrays (another dtype, not C-contiguous) or failed its first-use check
(probes.py), and the caller then runs its Array API reference body.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable
from typing import Any

import numpy as np

from xnet.backends import cpu_threads
from xnet.backends.cpu_kernels import (
    cross_entropy,
    dense_activation,
    direct_conv,
    norm_pool,
    optim,
    probes,
    rows,
    scratch,
    spin,
    windows,
    winograd,
    winograd_grad,
)
from xnet.backends.cpu_kernels.dense_activation import ACTIVATION_KINDS
from xnet.backends.fast_paths import FLOATS, OPTIMIZER_SCALARS

# each thread's share of a memory-bound pass: small enough that both cores get several, large
# enough that the ~45 us hand-off to a worker thread is a small part of it
PASS_BYTES = 1 << 21
# passes over less run whole on the calling thread: a hand-off to a worker costs ~45 us on an idle
# machine and far more on a busy one, where the worker waits for a time slice (workload 3's 1.6 MB
# pooling backward measured 2.4 ms split, 0.4 ms whole, at load 8 on 2 cores)
SPLIT_MIN_BYTES = 1 << 22
# ... and while the workers poll for hand-offs (cpu_threads.polling()), which then cost ~30 us
# (the GIL still changes hands), passes over more than this are split: workload 3's step (ReLU-pool
# passes of 0.8 and 1.6 MB) took 2.70-2.90 ms instead of 2.93-3.0 ms (idle 2-core Intel Xeon). At
# 256 KB workload 1's (128, 256) ReLU was split too, and took 70 us instead of 35
POLLING_SPLIT_MIN_BYTES = 1 << 19
# optimizer updates run ~4 values/ns on one core: below this, a hand-off to a thread costs more than it saves
SPLIT_MIN_VALUES = 1 << 18
# ... and while the workers poll: workload 1's 784x256 weight (200k values) split in two, epochs
# 0.415-0.49 s against 0.423-0.48 s whole, lower in 8 of 9 alternating pairs (median 0.427 / 0.449)
POLLING_SPLIT_MIN_VALUES = 1 << 16
# the caller's block of a split update is larger by this many values per other block: it starts
# at once, a worker ~15 us later (its hand-off and the GIL). Adam over 203,530 float32 values on 2
# threads: 71.4 us in even halves, 65.1 us with 55% on the caller (idle 2-core Intel Xeon)
OPTIMIZER_HANDOFF_VALUES = 1 << 14
# cross-entropy's kernel takes rows of at most this many classes: its exponentials are scalar calls
# (pip's Numba has no vector math library), NumPy's are vectorised. CPU ms per loss forward +
# backward, float32, kernel vs reference: (128, 10) 0.033 vs 0.058; (128, 100) 0.11 vs 0.067;
# (128, 1000) 0.91 vs 0.44
CE_MAX_CLASSES = 32
# the direct convolution takes layers of at most this many input taps (C_in * kh * kw: 8 channels
# 3x3). CPU ms, forward + backward, float32, direct vs im2col and BLAS, on a loaded 2-core machine:
# (64, 1, 28, 28) -> 8: 0.79 vs 1.97; (64, 8, 14, 14) -> 16: 3.6 vs 4.5; (128, 1, 28, 28) -> 32: 6.8
# vs 10.3. Wider layers run im2col and the BLAS product, which wins once its window matrix is thick.
DIRECT_MAX_TAPS = 72
# bytes of a Winograd chunk's transformed input and products (16 x (C + C_out) values a tile), so
# that they stay in a core's cache: workload 4's 32->64 layer (300 KB a sample) ran in 4.4 ms with
# 4 or 8 samples a chunk, 8.0 ms with 1; workload 8's (885 KB a sample) 6.1 ms with 2, 7.4 with 8
WINOGRAD_CHUNK_BYTES = 1 << 21
# multiply-adds per thread before a direct convolution is shared out (~1 ms of one core's work)
DIRECT_SPLIT_MACS = 1 << 22


def use_spin_wait() -> None:
    """Let cpu_threads' workers and waiting callers poll before they sleep (spin.py); they keep
    sleeping at once where the polling loop does not compile (no sched_yield in the C library) and
    off x86 (spin.CYCLE_COUNTER_MACHINES)."""
    if platform.machine().lower() not in spin.CYCLE_COUNTER_MACHINES:
        return
    try:
        per_look, cycles_per_second = spin.calibrate()
    except Exception:
        return
    looks = max(1, int(cpu_threads.SPIN_SECONDS / per_look))
    late = int(cpu_threads.SPIN_LATE_SECONDS * cycles_per_second) if cycles_per_second > 0 else 1 << 62
    spin.finish_then_wait_for(np.zeros(1, np.int64), np.zeros(1, np.int64), 1, 1, late)  # compiled (or loaded) now
    cpu_threads.use_spin_wait(spin.wait_for, looks, late, spin.finish_then_wait_for)


def _fits(*arrays: np.ndarray) -> bool:
    """Whether the kernels take these arrays: NumPy, one float dtype, C-contiguous."""
    dtype = arrays[0].dtype
    if dtype not in FLOATS:
        return False
    for a in arrays:  # noqa: SIM110 (a loop, not all() over a generator: this runs on every small call)
        if type(a) is not np.ndarray or a.dtype != dtype or not a.flags.c_contiguous:
            return False
    return True


def _split(backend: Any, n: int, bytes_per_item: int) -> list[tuple[int, int]]:
    """Batch ranges for the threads; one range for a small pass, which a hand-off would only delay
    (a (128, 10) cross-entropy took 250 us split in two, 155 us as the reference's one pass)."""
    size = n * bytes_per_item
    if size <= POLLING_SPLIT_MIN_BYTES or (size <= SPLIT_MIN_BYTES and not cpu_threads.polling()):
        return [(0, n)]
    return backend.batch_chunks(n, bytes_per_item, PASS_BYTES)


def norm_relu_pool(backend: Any, x: np.ndarray, scale: np.ndarray | None, shift: np.ndarray | None) -> Any:
    """x (N, C, H, W), H and W even -> (y (N, C, H/2, W/2), winner uint8) of max-pool(ReLU(x * scale + shift)); or None.

    scale and shift (C,) are batch norm's; None for none (then z = x exactly)."""
    affine = scale is not None
    if affine:
        if not _fits(x, scale, shift):
            return None
    elif not _fits(x):
        return None
    if not probes.ok("norm_relu_pool", x.dtype):
        return None
    N, C, H, W = x.shape
    if not affine:
        scale = shift = np.zeros((C,), x.dtype)
    y = np.empty((N, C, H // 2, W // 2), x.dtype)
    winner = np.empty((N, C, H // 2, W // 2), np.uint8)
    backend.map_chunks(
        lambda lo, hi: norm_pool.forward(x, scale, shift, affine, y, winner, lo, hi), _split(backend, N, x[0].nbytes)
    )
    return y, winner


def channel_moments(backend: Any, x: np.ndarray) -> Any:
    """x (N, C, H, W) -> its per-channel (mean, biased variance), (C,) each in x's dtype; or None."""
    if x.ndim != 4 or x.shape[0] == 0 or not (_fits(x) and probes.ok("moments", x.dtype)):
        return None
    C, per_sample = x.shape[1], x.shape[2] * x.shape[3]
    chunks = _split(backend, x.shape[0], x[0].nbytes)

    def part(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        mu, m2 = np.empty((C,)), np.empty((C,))
        norm_pool.moments(x, mu, m2, lo, hi)
        return mu, m2

    parts = backend.map_chunks(part, chunks)
    # the chunks combined in chunk order (Chan, Golub and LeVeque), as BatchNorm combines its own:
    # mean = sum(n_i mu_i) / M, M * var = sum(M2_i + n_i (mu_i - mean)^2)
    sizes = [(hi - lo) * per_sample for lo, hi in chunks]
    M = sum(sizes)
    mean = sum(mu * n for (mu, _), n in zip(parts, sizes, strict=True)) / M
    var = sum(m2 + (mu - mean) ** 2 * n for (mu, m2), n in zip(parts, sizes, strict=True)) / M
    return mean.astype(x.dtype), var.astype(x.dtype)


def pool_grad_sums(backend: Any, g: np.ndarray, x: np.ndarray, winner: np.ndarray, mean: np.ndarray) -> Any:
    """(sum of dz * (x - mean), sum of dz) per channel, (C,) each, dz = g routed to the winners; or None."""
    if not (_fits(g, x, mean) and winner.flags.c_contiguous and probes.ok("pool_grad", x.dtype)):
        return None
    C = x.shape[1]

    def part(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        dot, total = np.empty((C,)), np.empty((C,))
        norm_pool.grad_sums(g, x, winner, mean, dot, total, lo, hi)
        return dot, total

    parts = backend.map_chunks(part, _split(backend, x.shape[0], x[0].nbytes))
    dot, total = parts[0]
    for d, t in parts[1:]:  # in chunk order: the same sums whatever thread ran which chunk
        dot, total = dot + d, total + t
    return dot.astype(x.dtype), total.astype(x.dtype)


def pool_grad_input(backend: Any, g: np.ndarray, x: np.ndarray, winner: np.ndarray, terms: tuple | None) -> Any:
    """dx (N, C, H, W) from the pooled gradient g: terms None -> dz (routed), (s,) -> dz * s,
    (mean, s, k, c) -> dz * s - (x - mean) * k - c, per channel (C,) each; or None."""
    if not (_fits(g, x) and winner.flags.c_contiguous and probes.ok("pool_grad", x.dtype)):
        return None
    C = x.shape[1]
    none = np.zeros((C,), x.dtype)
    # (C,) each, in x's dtype and contiguous, so that after pool_grad_sums took these arrays this
    # takes them too (the caller has then already accumulated batch norm's parameter gradients)
    terms = tuple(np.ascontiguousarray(t, x.dtype) for t in terms or ())
    if not terms:
        mode, (mean, s, k, c) = 0, (none, none, none, none)
    elif len(terms) == 1:
        mode, (mean, s, k, c) = 1, (none, terms[0], none, none)
    else:
        mode, (mean, s, k, c) = 2, terms
    dx = np.empty(x.shape, x.dtype)
    backend.map_chunks(
        lambda lo, hi: norm_pool.grad_input(g, x, winner, mean, s, k, c, mode, dx, lo, hi),
        _split(backend, x.shape[0], 2 * x[0].nbytes),
    )
    return dx


def im2col(xpad: np.ndarray, stride: tuple, dilation: tuple, buf: np.ndarray) -> np.ndarray | None:
    """buf (G, kh, kw, C/G, N, Ho, Wo) filled with the windows of padded xpad (N, C, Hp, Wp); or None."""
    if not (_fits(xpad, buf) and probes.ok("im2col", xpad.dtype)):
        return None
    windows.im2col(xpad, stride[0], stride[1], dilation[0], dilation[1], buf)
    return buf


def col2im(cols: np.ndarray, stride: tuple, dilation: tuple, out: np.ndarray) -> np.ndarray | None:
    """out (C, N, Hp, Wp) = the windows cols (G, kh, kw, C/G, N, Ho, Wo) added back where they overlap; or None."""
    if not (_fits(cols, out) and probes.ok("col2im", cols.dtype)):
        return None
    windows.col2im(cols, stride[0], stride[1], dilation[0], dilation[1], out)
    return out


def _conv_chunks(backend: Any, n: int, macs_per_item: int) -> list[tuple[int, int]]:
    """Batch ranges for a compute-bound pass: one per thread once there are DIRECT_SPLIT_MACS each."""
    parts = max(1, min(backend.threads, n, n * macs_per_item // DIRECT_SPLIT_MACS))
    return [(n * k // parts, n * (k + 1) // parts) for k in range(parts)]


def conv2d(backend: Any, xpad: np.ndarray, w: np.ndarray, bias: np.ndarray | None, out_hw: tuple) -> Any:
    """Padded xpad (N, C, Hp, Wp), w (Co, C, kh, kw) -> y (N, Co, Ho, Wo) for stride 1, no dilation
    and one group: by the direct convolution for few input taps (direct_conv.py), by Winograd's
    F(2x2, 3x3) for wider 3x3 layers with an even output (winograd.py); or None."""
    C, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    if xpad.ndim != 4 or xpad.shape[1] != C or xpad.shape[0] == 0:
        return None
    if C * kh * kw > DIRECT_MAX_TAPS:
        return _winograd(backend, xpad, w, bias, out_hw)
    bias = np.zeros((w.shape[0],), w.dtype) if bias is None else bias
    if not (_fits(xpad, w, bias) and probes.ok("direct_conv", xpad.dtype)):
        return None
    N, Co = xpad.shape[0], w.shape[0]
    y = np.empty((N, Co, *out_hw), xpad.dtype)
    backend.map_chunks(
        lambda lo, hi: direct_conv.forward(xpad, w, bias, y, lo, hi),
        _conv_chunks(backend, N, Co * C * kh * kw * out_hw[0] * out_hw[1]),
    )
    return y


def _winograd_applies(xpad: np.ndarray, w: np.ndarray, out_hw: tuple) -> bool:
    """Whether F(2x2, 3x3)'s tiles cover this layer: a 3x3 kernel, and an even output of (Hp - 2, Wp - 2)."""
    (Ho, Wo) = out_hw
    return w.shape[2:] == (3, 3) and not (Ho % 2 or Wo % 2) and (xpad.shape[2] - 2, xpad.shape[3] - 2) == (Ho, Wo)


def _input_tiles(xpad: np.ndarray, C: int, out_hw: tuple, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """(V planes (16, T * C + pad), the parity-split scratch X4) of samples lo..hi-1, in this thread's arrays."""
    (Ho, Wo), dtype = out_hw, xpad.dtype
    Vp = winograd.tile_planes((hi - lo) * Ho * Wo // 4 * C, dtype, "V")
    X4 = scratch.array("phases", (4, (Ho // 2 + 1) * (Wo // 2 + 1) * C), dtype)
    winograd.input_tiles(xpad, Vp, X4, lo, hi)
    return Vp, X4


def _winograd(backend: Any, xpad: np.ndarray, w: np.ndarray, bias: np.ndarray | None, out_hw: tuple) -> Any:
    """conv2d by F(2x2, 3x3), chunks of samples on the threads (WINOGRAD_CHUNK_BYTES); None where it does not apply."""
    if not _winograd_applies(xpad, w, out_hw):
        return None
    Ho, Wo = out_hw
    bias = np.zeros((w.shape[0],), w.dtype) if bias is None else bias
    if not (_fits(xpad, w, bias) and probes.ok("winograd", xpad.dtype)):
        return None
    N, C, Co, dtype = xpad.shape[0], w.shape[1], w.shape[0], xpad.dtype
    Ut = np.ascontiguousarray(winograd.weight_transform(w).transpose(0, 2, 1))  # (16, C, Co)
    y = np.empty((N, Co, Ho, Wo), dtype)
    per = Ho * Wo // 4  # tiles per sample

    def part(lo: int, hi: int) -> None:
        T = (hi - lo) * per
        Vp, _ = _input_tiles(xpad, C, out_hw, lo, hi)
        Mp = winograd.tile_planes(T * Co, dtype, "M")
        np.matmul(winograd.planes_as(Vp, T, C), Ut, out=winograd.planes_as(Mp, T, Co))
        R, row = scratch.array("half tiles", (8, T * Co), dtype), scratch.array("row", (2, Wo // 2 * Co), dtype)
        winograd.output_tiles(Mp, R, row, bias, y, lo, hi)

    per_sample = (16 * C + 24 * Co) * per * xpad.itemsize  # V; M and its half-transformed 8 planes
    backend.map_chunks(part, backend.batch_chunks(N, per_sample, WINOGRAD_CHUNK_BYTES))
    return y


def conv2d_backward(backend: Any, xpad: np.ndarray, w: np.ndarray, g: np.ndarray, pads: tuple, x_shape: tuple,
                    want_dx: bool) -> Any:  # fmt: skip
    """(dx (N, C, H, W) or None, dw like w, db (Co,)) of conv2d's output gradient g; or None."""
    C, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    if g.ndim != 4 or not _fits(xpad, w, g):
        return None
    if C * kh * kw > DIRECT_MAX_TAPS:
        return _winograd_backward(backend, xpad, w, g, pads, x_shape, want_dx)
    if not probes.ok("direct_conv_backward", g.dtype):
        return None
    N, Co = g.shape[0], g.shape[1]
    dx = np.empty(x_shape, g.dtype) if want_dx else np.empty((1, 1, 1, 1), g.dtype)

    def part(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        dw, db = np.empty(w.shape, w.dtype), np.empty((Co,), w.dtype)
        direct_conv.backward(xpad, w, g, pads[0], pads[2], dw, db, dx, want_dx, lo, hi)
        return dw, db

    macs = (2 if want_dx else 1) * Co * C * kh * kw * g.shape[2] * g.shape[3]
    parts = backend.map_chunks(part, _conv_chunks(backend, N, macs))
    dw, db = parts[0]
    for a, b in parts[1:]:  # in chunk order: the same sums whatever thread ran which chunk
        dw, db = dw + a, db + b
    return (dx if want_dx else None), dw, db


def _winograd_backward(backend: Any, xpad: np.ndarray, w: np.ndarray, g: np.ndarray, pads: tuple, x_shape: tuple,
                       want_dx: bool) -> Any:  # fmt: skip
    """conv2d_backward by F(2x2, 3x3)'s adjoint (winograd_grad.py), chunks of samples on the threads;
    None where the forward's tiles do not apply."""
    Ho, Wo = g.shape[2:]
    if not _winograd_applies(xpad, w, (Ho, Wo)):
        return None
    if not probes.ok("winograd_backward", g.dtype):
        return None
    N, C, Co, dtype = xpad.shape[0], w.shape[1], w.shape[0], g.dtype
    U = winograd.weight_transform(w) if want_dx else None  # (16, Co, C)
    dx = np.empty(x_shape, dtype) if want_dx else None
    per = Ho * Wo // 4  # tiles per sample

    def part(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        T, db = (hi - lo) * per, np.empty((Co,), dtype)
        Vp, X4 = _input_tiles(xpad, C, (Ho, Wo), lo, hi)
        Dp = winograd.tile_planes(T * Co, dtype, "D")
        winograd_grad.grad_tiles(g, Dp, scratch.array("g phases", (4, T * Co), dtype), lo, hi)
        winograd_grad.channel_sums(g, lo, hi, db)
        D = winograd.planes_as(Dp, T, Co)
        dU = np.matmul(winograd.planes_as(Vp, T, C).transpose(0, 2, 1), D)  # (16, C, Co)
        if dx is not None:
            dVp = winograd.tile_planes(T * C, dtype, "M")
            np.matmul(D, U, out=winograd.planes_as(dVp, T, C))
            # V is spent: its planes take the input gradient's half-transformed tiles
            winograd_grad.input_grad(dVp, Vp, X4, dx, Ho // 2, Wo // 2, pads[0], pads[2], lo, hi)
        return dU, db

    per_sample = (36 * C + 20 * Co) * per * xpad.itemsize  # V, D, dV, the g and input phases
    parts = backend.map_chunks(part, backend.batch_chunks(N, per_sample, WINOGRAD_CHUNK_BYTES))
    dU, db = parts[0]
    for a, b in parts[1:]:  # in chunk order: the same sums whatever thread ran which chunk
        dU, db = dU + a, db + b
    return dx, winograd_grad.weight_gradient(dU), db


def relu(backend: Any, x: np.ndarray) -> Any:
    """(x * mask, mask) with mask = [x > 0] in x's dtype, shaped like x, in one pass; or None."""
    if not (_fits(x) and probes.ok("relu", x.dtype)):
        return None
    y, mask = np.empty(x.shape, x.dtype), np.empty(x.shape, x.dtype)
    flat_x, flat_y, flat_m, one = x.reshape(-1), y.reshape(-1), mask.reshape(-1), x.dtype.type(1)
    backend.map_chunks(
        lambda lo, hi: rows.relu(flat_x[lo:hi], one, flat_y[lo:hi], flat_m[lo:hi]),
        _split(backend, x.size, 3 * x.itemsize),
    )
    return y, mask


def bias_activation(backend: Any, z: np.ndarray, bias: np.ndarray | None, kind: str) -> np.ndarray | None:
    """z (N, K) -> act(z + bias), written into z; or None (z untouched). See dense_activation.activate."""
    if kind not in ACTIVATION_KINDS or z.ndim != 2 or not _fits(z, *(() if bias is None else (bias,))):
        return None
    if kind == "relu":
        if not probes.ok("bias_relu", z.dtype):
            return None
        chunks = _split(backend, z.shape[0], 2 * z.shape[1] * z.itemsize)
        if len(chunks) == 1:
            dense_activation.activate(z, bias, kind)
        else:
            one, b = z.dtype.type(1), (bias if bias is not None else np.empty((0,), z.dtype))
            backend.map_chunks(lambda r0, r1: rows.bias_relu(z, b, bias is not None, one, r0, r1), chunks)
        return z
    if z.size * z.itemsize * 3 > backend.pass_split_bytes:  # the layers' own passes go in chunks on all cores
        return None
    dense_activation.activate(z, bias, kind)
    return z


def dense_activation_kernels(backend: Any, kind: str, shape: tuple[int, int], dtype: np.dtype) -> Any:
    """dense_activation.make for passes that bias_activation and activation_grad would run whole on the
    caller, polling or not (larger ones keep their route: split, or the layers' chunked passes)."""
    return dense_activation.make(kind, shape, dtype, min(POLLING_SPLIT_MIN_BYTES, backend.pass_split_bytes))


def activation_grad(backend: Any, g: np.ndarray, y: np.ndarray, kind: str, sums: bool) -> Any:
    """Gradient g (N, K) at an activation's output y (N, K) -> (gradient at its input (N, K),
    its column sums (K,) or None without `sums`); or None."""
    if g.ndim != 2 or g.shape != y.shape or not g.shape[0] or kind not in ACTIVATION_KINDS or not _fits(g, y):
        return None
    if not probes.ok("activation_grad", g.dtype):
        return None
    N, K = g.shape
    gz, one, code = np.empty((N, K), g.dtype), g.dtype.type(1), ACTIVATION_KINDS[kind]
    chunks = _split(backend, N, 3 * K * g.itemsize)
    if len(chunks) == 1:  # the usual MLP batch: called directly, a microsecond less
        total = np.empty((K,), g.dtype)
        rows.activation_grad(g, y, code, one, gz, total, 0, N)
        return gz, total if sums else None

    def part(r0: int, r1: int) -> np.ndarray:
        s = np.empty((K,), g.dtype)
        rows.activation_grad(g, y, code, one, gz, s, r0, r1)
        return s

    parts = backend.map_chunks(part, chunks)
    total = parts[0]
    for s in parts[1:]:  # in chunk order: the same sums whatever thread ran which chunk
        total = total + s
    return gz, total if sums else None


def dropout(backend: Any, x: np.ndarray, take: Callable[[], int], words: Callable[[int, int], np.ndarray],
            threshold: int, scale: float) -> Any:  # fmt: skip
    """(x * mask, mask), mask = [w >> 11 < threshold] * scale with w the draw's word of each element; or None.

    take() advances the random stream past the draw and gives the word of x's first element (called
    only once the kernel takes x); words(first, n) gives n words from word `first` (a counter-based
    stream: any range, on any thread). Chunks of the flat array run on the worker threads, each
    generating its own words, so the words never pass through memory as one large array."""
    if not (_fits(x) and probes.ok("dropout", x.dtype)):
        return None
    start = take()
    y, mask = np.empty(x.shape, x.dtype), np.empty(x.shape, x.dtype)
    flat_x, flat_y, flat_m = x.reshape(-1), y.reshape(-1), mask.reshape(-1)
    t, sc = np.uint64(threshold), x.dtype.type(scale)

    def part(lo: int, hi: int) -> None:
        rows.dropout(flat_x[lo:hi], words(start + lo, hi - lo), t, sc, flat_y[lo:hi], flat_m[lo:hi])

    backend.map_chunks(part, _split(backend, x.size, 3 * x.itemsize + 8))  # 8: an element's word
    return y, mask


def softmax_cross_entropy(backend: Any, z: np.ndarray, labels: np.ndarray, smoothing: float, scale: float) -> Any:
    """Logits (N, K), integer labels (N,) -> (terms (N,), (softmax - q) * scale (N, K)); or None (soft targets too)."""
    if z.ndim != 2 or z.shape[1] > CE_MAX_CLASSES or labels.shape != (z.shape[0],) or not _fits(z):
        return None
    if labels.dtype not in (np.dtype(np.int32), np.dtype(np.int64)) or not labels.flags.c_contiguous:
        return None
    if not probes.ok("softmax_cross_entropy", z.dtype):
        return None
    N, K = z.shape
    t = z.dtype.type
    hi, lo, sc = t(1.0 - smoothing), t(smoothing / K), t(scale)
    terms, grad = np.empty((N,), z.dtype), np.empty((N, K), z.dtype)
    labels = labels.astype(np.int64, copy=False)
    chunks = _split(backend, N, 3 * K * z.itemsize)
    if len(chunks) == 1:  # the usual batch: called directly, a microsecond less
        rows.ce_labels(z, labels, hi, lo, sc, terms, grad, 0, N)
    else:
        backend.map_chunks(lambda r0, r1: rows.ce_labels(z, labels, hi, lo, sc, terms, grad, r0, r1), chunks)
    return terms, grad


def cross_entropy_kernels(shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """cross_entropy.make for batches that softmax_cross_entropy would run whole on the caller, polling or not."""
    return cross_entropy.make(shape, dtype, CE_MAX_CLASSES, POLLING_SPLIT_MIN_BYTES)


def take_normalized(raw: np.ndarray, index: np.ndarray, offset: float, scale: float) -> np.ndarray | None:
    """Rows `index` (B,) of uint8 raw (N, ...) -> float32 (B, ...) (raw - offset) / scale, as
    Normalization.apply computes it (offset 0 / scale 1: that step skipped); or None."""
    if type(raw) is not np.ndarray or raw.dtype != np.uint8 or not raw.ndim or not raw.size:
        return None
    if not raw.flags.c_contiguous:
        return None
    if type(index) is not np.ndarray or index.ndim != 1 or index.dtype.kind not in "iu":
        return None
    # the kernel does not check its reads: an index out of range is left to NumPy's take and its error
    if index.size and (int(index.min()) < 0 or int(index.max()) >= raw.shape[0]):
        return None
    if not probes.ok("take_normalized", np.float32):
        return None
    out = np.empty((index.shape[0], *raw.shape[1:]), np.float32)
    off, sc = np.float32(offset), np.float32(scale)
    per = math.prod(raw.shape[1:])  # a sample's values (reshape cannot infer them for an empty batch)
    rows.take_scaled(raw.reshape(-1, per), index.astype(np.int64, copy=False), off, sc, off != 0, sc != 1,
                     out.reshape(-1, per))  # fmt: skip
    return out


def optimizer(name: str, arrays: tuple[np.ndarray, ...]) -> Callable[[dict[str, Any]], None] | None:
    """fn(scalars) updating `arrays` (one shape) in place as optim's `name` body does, the keyword scalars of
    fast_paths.OPTIMIZER_SCALARS[name] given as a dict; or None. Made once per arrays (kept in the optimizer's cache,
    NumpyBackend.optimizer_kernel)."""
    if name not in optim.OPTIMIZERS or not _fits(*arrays) or len({a.shape for a in arrays}) != 1:
        return None
    dtype = arrays[0].dtype
    if not probes.ok(name, dtype):
        return None
    kernel, ints, flat = optim.OPTIMIZERS[name], optim.INT_SCALARS[name], [a.reshape(-1) for a in arrays]
    # each scalar as the kernel takes it: an int (flags and modes) or a number of the arrays' dtype
    typed = [(n, int if i in ints else dtype.type) for i, n in enumerate(OPTIMIZER_SCALARS[name])]
    size = flat[0].shape[0]
    threads = cpu_threads.threads()

    def bounds(floor: int) -> list[int]:
        """A large parameter in one block per thread (elementwise: the blocks give the same numbers)."""
        parts = min(threads, max(1, size // floor))
        head = min(size, (size + (parts - 1) * OPTIMIZER_HANDOFF_VALUES) // parts)
        return [0] + [head + (size - head) * k // max(1, parts - 1) for k in range(parts)]

    polling, idle = bounds(POLLING_SPLIT_MIN_VALUES), bounds(SPLIT_MIN_VALUES)
    same = polling == idle
    # the last scalars and their typed values: most steps repeat them, and converting them again cost
    # 1.7 us a step of workload 2 (scalars equal by == count as the same: 0.0 and -0.0 too)
    last: list[Any] = [None, None]

    def launch(scalars: dict[str, Any]) -> None:
        if scalars == last[0]:
            values = last[1]
        else:
            values = [kind(scalars[n]) for n, kind in typed]
            last[:] = [dict(scalars), values]
        # whether the workers poll decides the split only for a size between the two floors
        split = polling if same or cpu_threads.polling() else idle
        if len(split) == 2:
            kernel(*values, *flat)
            return
        cpu_threads.run_chunks(
            lambda k, worker: kernel(*values, *(a[split[k] : split[k + 1]] for a in flat)), len(split) - 1
        )

    return launch
