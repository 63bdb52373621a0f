"""Turning a user's picture of a digit into an MNIST-like array (Pillow is optional)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xnet.errors import XnetError


def read_image(path: str | Path, invert: bool = False) -> np.ndarray:
    """Any image file -> grayscale uint8 (H, W), white digit on black (invert dark-on-light ones)."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise XnetError('reading images needs Pillow: pip install "xnet[images]"') from None
    try:
        with Image.open(path) as img:
            gray = np.asarray(img.convert("L"), dtype=np.uint8)
    except FileNotFoundError:
        raise XnetError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise XnetError(f"cannot read image {path}: {e}") from None
    return 255 - gray if invert else gray


def mnist_like(gray: np.ndarray, side: int = 28, box: int | None = None) -> np.ndarray:
    """Crop the digit, scale its longer side to `box` pixels and centre its mass in side x side.

    This is how the MNIST digits were prepared (a 20-pixel box in 28), so photos and drawings
    of any size look like the training data; `box` defaults to the same proportion of `side`.
    (H, W) uint8 -> (side, side) uint8.
    """
    from PIL import Image

    if box is None:
        box = max(1, round(side * 20 / 28))
    if not 1 <= box <= side:
        raise ValueError(f"mnist_like: expected 1 <= box <= side, got box {box}, side {side}")

    ys, xs = np.nonzero(gray > 0.2 * max(int(gray.max()), 1))
    if len(ys) == 0:
        return np.zeros((side, side), np.uint8)
    crop = gray[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    digit = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS), dtype=np.float64)
    canvas = np.zeros((side, side))
    total = digit.sum() or 1.0
    cy = (digit.sum(axis=1) * np.arange(digit.shape[0])).sum() / total
    cx = (digit.sum(axis=0) * np.arange(digit.shape[1])).sum() / total
    top = int(round(side / 2 - cy))
    left = int(round(side / 2 - cx))
    top = min(max(top, 0), side - digit.shape[0])
    left = min(max(left, 0), side - digit.shape[1])
    canvas[top : top + digit.shape[0], left : left + digit.shape[1]] = digit
    return np.clip(canvas, 0, 255).astype(np.uint8)
