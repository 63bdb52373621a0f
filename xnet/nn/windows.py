"""Sliding windows over NCHW images: argument pairs, output sizes, padding, im2col and col2im.

Shared by Conv2D and the pooling layers. Everything here is standard Array API code; the loops
run over kernel offsets (kh * kw of them), never over samples or pixels.

Window layout: (G, kh, kw, C/G, N, Ho, Wo). The leading (kh, kw, C/G) axes merge into the
reduction axis and (N, Ho, Wo) into one long axis, so a convolution's forward, weight gradient
and input gradient are each ONE matrix product per group for a whole chunk of samples (Conv2D
cuts the batch into cache-sized chunks), not one small product per sample. Filling the windows
is kh * kw block copies of a whole (C, N, Ho, Wo) slice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from xnet.backends import Array, Backend

Pair = tuple[int, int]
Pads = tuple[int, int, int, int]  # (top, bottom, left, right)


def pair(value: Any, name: str, layer: str, minimum: int = 1) -> Pair:
    """An int or a pair of ints (each >= minimum) as a pair; ValueError naming `layer` otherwise."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    ok = len(items) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in items
    )
    if not ok:
        raise ValueError(
            f"{layer}: {name} must be an int >= {minimum} or a pair of them, got {value!r}"
        )
    return items[0], items[1]


def compact(p: Pair) -> int | list[int]:
    """A pair as one int when both sides agree (how configs are written), else a list."""
    return p[0] if p[0] == p[1] else [p[0], p[1]]


def same_pads(kernel: Pair, dilation: Pair) -> Pads:
    """Padding that keeps H, W at stride 1; the odd extra goes bottom/right, as in PyTorch."""
    th, tw = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
    return th // 2, th - th // 2, tw // 2, tw - tw // 2


def output_hw(
    layer: str, shape: tuple[int, ...], kernel: Pair, stride: Pair, dilation: Pair, pads: Pads
) -> Pair:
    """(Ho, Wo) by floor division, like PyTorch; ValueError when a window does not fit at all."""
    H, W = shape[2], shape[3]
    Hp, Wp = H + pads[0] + pads[1], W + pads[2] + pads[3]
    eh, ew = dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1
    if eh > Hp or ew > Wp:
        dil = "" if dilation == (1, 1) else f" (dilation {dilation[0]}x{dilation[1]})"
        raise ValueError(
            f"{layer}: window {kernel[0]}x{kernel[1]}{dil} spans {eh}x{ew}, larger than the "
            f"padded input {Hp}x{Wp} (input shape {tuple(shape)}, padding {list(pads)})"
        )
    return (Hp - eh) // stride[0] + 1, (Wp - ew) // stride[1] + 1


def check_nchw(layer: str, x: Array, channels: int | None = None) -> None:
    """ValueError naming `layer` unless x is 4-D (N, C, H, W) with `channels` channels."""
    shape = tuple(x.shape)
    if x.ndim != 4:
        raise ValueError(f"{layer}: expected 4-D input (N, C, H, W), got shape {shape}")
    if channels is not None and shape[1] != channels:
        s = "" if shape[1] == 1 else "s"
        raise ValueError(f"{layer}: input has {shape[1]} channel{s}, shape {shape}")


def pad_into(backend: Backend, x: Array, pads: Pads, value: float, buf: Array | None) -> Array:
    """(N, C, H, W) -> (N, C, H+top+bottom, W+left+right) with `value` around x.

    `buf` is a previous result of the same shape and dtype (its border already holds `value`);
    reusing it saves an allocation and a fill per step. Returns x itself when pads are all 0.
    """
    if not any(pads):
        return x
    N, C, H, W = x.shape
    shape = (N, C, H + pads[0] + pads[1], W + pads[2] + pads[3])
    if buf is None or tuple(buf.shape) != shape or buf.dtype != x.dtype:
        buf = backend.full(shape, value, x.dtype)
    buf[:, :, pads[0] : pads[0] + H, pads[2] : pads[2] + W] = x
    return buf


def _window_slice(offset: int, step: int, count: int) -> slice:
    return slice(offset, offset + step * (count - 1) + 1, step)


def window_slices(
    kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair
) -> Iterator[tuple[int, slice, slice]]:
    """For each kernel offset (i, j), row-major: (i*kw + j, row slice, column slice).

    x[:, :, rows, cols] of a padded (N, C, Hp, Wp) input is the (N, C, Ho, Wo) block of the
    values every window holds at that offset.
    """
    for i in range(kernel[0]):
        rows = _window_slice(i * dilation[0], stride[0], out_hw[0])
        for j in range(kernel[1]):
            yield i * kernel[1] + j, rows, _window_slice(j * dilation[1], stride[1], out_hw[1])


def im2col(
    backend: Backend,
    xpad: Array,
    kernel: Pair,
    stride: Pair,
    dilation: Pair,
    out_hw: Pair,
    groups: int = 1,
    buf: Array | None = None,
) -> Array:
    """Padded (N, C, Hp, Wp) -> windows (G, kh, kw, C/G, N, Ho, Wo), one block copy per offset.

    `buf` is a previous result of the same shape and dtype to fill instead of allocating.
    """
    N, C = xpad.shape[0], xpad.shape[1]
    (kh, kw), (Ho, Wo), G = kernel, out_hw, groups
    shape = (G, kh, kw, C // G, N, Ho, Wo)
    if buf is None or tuple(buf.shape) != shape or buf.dtype != xpad.dtype:
        buf = backend.zeros(shape, xpad.dtype)
    if backend.fused_im2col(xpad, stride, dilation, buf) is not None:  # one compiled pass (NumPy backend)
        return buf
    xp = backend.xp
    xt = xp.permute_dims(xpad, (1, 0, 2, 3))  # (C, N, Hp, Wp), a view: only read from
    if G > 1:
        xt = xp.reshape(xt, (G, C // G, N, xpad.shape[2], xpad.shape[3]))
    for k, rows, cols in window_slices(kernel, stride, dilation, out_hw):
        if G == 1:
            buf[0, k // kw, k % kw, ...] = xt[:, :, rows, cols]
        else:
            buf[:, k // kw, k % kw, ...] = xt[:, :, :, rows, cols]
    return buf


def col2im(
    backend: Backend,
    cols: Array,
    out: Array,
    kernel: Pair,
    stride: Pair,
    dilation: Pair,
) -> Array:
    """Windows (G, kh, kw, C/G, N, Ho, Wo) -> out (C, N, Hp, Wp): every window added back in place.

    The adjoint of `im2col`: where windows overlap, their values sum. `out` is overwritten. It
    keeps the windows' channel-major order, so each of the kh * kw slice-adds reads and writes
    memory in the same order; the caller moves it to NCHW once, after cropping the padding.
    """
    G, kh, kw, Cg, N, Ho, Wo = cols.shape
    if backend.fused_col2im(cols, stride, dilation, out) is not None:  # one compiled pass (NumPy backend)
        return out
    xp = backend.xp
    out[...] = 0
    for k, rows, cols_ in window_slices(kernel, stride, dilation, (Ho, Wo)):
        block = cols[0, k // kw, k % kw, ...] if G == 1 else cols[:, k // kw, k % kw, ...]
        out[:, :, rows, cols_] += xp.reshape(block, (G * Cg, N, Ho, Wo))  # copies if G > 1
    return out


def crop(x: Array, pads: Pads) -> Array:
    """(A, B, Hp, Wp) -> the (A, B, H, W) inside `pads` (a view where the library allows)."""
    if not any(pads):
        return x
    Hp, Wp = x.shape[2], x.shape[3]
    return x[:, :, pads[0] : Hp - pads[1], pads[2] : Wp - pads[3]]
