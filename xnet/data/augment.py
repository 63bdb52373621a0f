"""Random shifts and small rotations of an image batch, computed on the batch's device.

One bilinear resampling does both: each output pixel p reads the input at R(-angle)(p - shift)
around the image centre, gathered with xp.take on flattened indices (standard Array API only).
Random numbers come from the backend's "augment" stream, so a seeded backend gives the same augmentations
on every device.
"""

from __future__ import annotations

import math

from xnet.backends import Array, Backend


class Augment:
    """Augment(max_shift=2, max_rotate_degrees=10)(x (N, C, H, W)) -> same shape, new array.

    Each sample gets an integer shift in [-max_shift, max_shift] along each axis and a rotation
    angle uniform in [-max_rotate_degrees, max_rotate_degrees]. Pixels that come from outside
    the image take `fill`; fill=None uses each image's minimum (the background under every
    normalisation mode). Flat batches (N, S*S) are treated as (N, 1, S, S) images.
    """

    def __init__(
        self,
        max_shift: int = 2,
        max_rotate_degrees: float = 10.0,
        fill: float | None = None,
        backend: Backend | None = None,
    ):
        if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"Augment: max_shift must be an integer >= 0, got {max_shift!r}")
        if not 0 <= float(max_rotate_degrees) <= 180:
            raise ValueError(
                f"Augment: max_rotate_degrees must be in [0, 180], got {max_rotate_degrees!r}"
            )
        self.max_shift = max_shift
        self.max_rotate_degrees = float(max_rotate_degrees)
        self.fill = fill
        self.backend = backend

    def config(self) -> dict:
        """Constructor arguments, JSON-able."""
        return {
            "type": "augment",
            "max_shift": self.max_shift,
            "max_rotate_degrees": self.max_rotate_degrees,
            "fill": self.fill,
        }

    def __repr__(self) -> str:
        return f"Augment(max_shift={self.max_shift}, max_rotate_degrees={self.max_rotate_degrees:g})"

    def __call__(self, x: Array, backend: Backend | None = None) -> Array:
        """Randomly shifted and rotated copy of the batch x (N, C, H, W) or (N, S*S)."""
        b = backend or self.backend
        if b is None:
            raise TypeError("Augment needs a backend: Augment(..., backend=b) or augment(x, b)")
        shape = tuple(x.shape)
        if len(shape) == 2 and math.isqrt(shape[1]) ** 2 == shape[1]:
            side = math.isqrt(shape[1])
            x = b.xp.reshape(x, (shape[0], 1, side, side))
        elif len(shape) != 4:
            raise ValueError(
                f"Augment: expected an image batch (N, C, H, W) or (N, S*S), got shape {shape}"
            )
        if self.max_shift == 0 and self.max_rotate_degrees == 0:
            return b.xp.reshape(x, shape)  # a no-op; reshape keeps the caller's array untouched
        return b.xp.reshape(self._resample(x, b), shape)

    def _resample(self, x: Array, b: Backend) -> Array:
        xp = b.xp
        N, C, H, W = x.shape
        HW = H * W
        dt = x.dtype
        cy, cx = (H - 1) / 2, (W - 1) / 2
        pix = b.arange(HW)
        rows = xp.reshape(xp.astype(pix // W, dt), (1, HW)) - cy  # output coords about the centre
        cols = xp.reshape(xp.astype(pix % W, dt), (1, HW)) - cx
        s = self.max_shift
        stream = b.rng.stream("augment")
        shift = xp.astype(stream.integers(-s, s + 1, (N, 2)), dt)
        rad = math.radians(self.max_rotate_degrees)
        angle = stream.uniform((N, 1), -rad, rad, dtype=dt)
        cos, sin = xp.cos(angle), xp.sin(angle)
        py, px = rows - shift[:, 0:1], cols - shift[:, 1:2]  # undo the shift, then the rotation
        sy = cos * py + sin * px + cy  # (N, HW) source coordinates
        sx = cos * px - sin * py + cx
        y0, x0 = xp.floor(sy), xp.floor(sx)
        wy, wx = sy - y0, sx - x0

        flat = xp.reshape(x, (N * C * HW,))
        base = xp.reshape(b.arange(N * C) * HW, (N, C, 1))
        out = None
        covered = None  # total weight of corners that fall inside the image
        for dy, dx, w in (
            (0, 0, (1 - wy) * (1 - wx)),
            (0, 1, (1 - wy) * wx),
            (1, 0, wy * (1 - wx)),
            (1, 1, wy * wx),
        ):
            yy, xx = y0 + dy, x0 + dx
            inside = (yy >= 0) & (yy <= H - 1) & (xx >= 0) & (xx <= W - 1)
            w = w * xp.astype(inside, dt)  # corners outside the image read nothing
            # minimum(maximum(.)), not xp.clip, whose boolean-mask assignments sync a GPU (see clipping.py)
            rows, cols = xp.minimum(xp.maximum(yy, 0), H - 1), xp.minimum(xp.maximum(xx, 0), W - 1)
            src = xp.astype(rows * W + cols, xp.int64)
            idx = xp.reshape(base + xp.reshape(src, (N, 1, HW)), (N * C * HW,))
            vals = xp.reshape(xp.take(flat, idx), (N, C, HW)) * xp.reshape(w, (N, 1, HW))
            out = vals if out is None else out + vals
            covered = w if covered is None else covered + w
        fill = self.fill
        if fill is None:  # each image's own background value
            fill = xp.reshape(xp.min(xp.reshape(x, (N, C * HW)), axis=1), (N, 1, 1))
        out = out + fill * xp.reshape(1 - covered, (N, 1, HW))
        return xp.reshape(out, (N, C, H, W))
