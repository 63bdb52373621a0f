"""LayerNorm, GlobalAvgPool2D and AdaptiveAvgPool2D against small independent NumPy versions."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import gradient_check

from xnet.nn.adaptive_pool import AdaptiveAvgPool2D, GlobalAvgPool2D
from xnet.nn.layernorm import LayerNorm
from xnet.nn.module import build_on


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("shape", [(5,), (3, 4)])
def test_layernorm_forward_per_sample(backend, shape):
    x = _x((2, 3, *shape)) * 4 + 1
    with build_on(backend, "float64"):
        ln = LayerNorm(shape, eps=1e-3)
    w, b = _x(shape, 1), _x(shape, 2)
    ln.weight.data[...] = backend.asarray(w, "float64")
    ln.bias.data[...] = backend.asarray(b, "float64")
    y = backend.to_numpy(ln.forward(backend.asarray(x, "float64")))
    for i in range(2):  # sample by sample, row by row: the plain statistics formula
        for j in range(3):
            v = x[i, j].ravel()
            mu, var = sum(v) / v.size, sum((v - sum(v) / v.size) ** 2) / v.size
            ref = ((v - mu) / np.sqrt(var + 1e-3)).reshape(shape) * w + b
            np.testing.assert_allclose(y[i, j], ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_gradients(backend, affine):
    with build_on(backend, "float64"):
        ln = LayerNorm((3, 4), elementwise_affine=affine)
    if affine:  # not the identity affine, so that weight's gradient enters dx
        ln.weight.data[...] = backend.asarray(_x((3, 4), 3) + 1, "float64")
        ln.bias.data[...] = backend.asarray(_x((3, 4), 4), "float64")
    gradient_check(ln, backend.asarray(_x((2, 3, 4), 5), "float64"), backend)
    assert [n for n, _ in ln.named_parameters()] == (["weight", "bias"] if affine else [])


def test_layernorm_errors_and_config():
    ln = LayerNorm(8)
    assert ln.config() == {"type": "layernorm", "normalized_shape": [8]}
    assert LayerNorm([2, 3], eps=1e-6, elementwise_affine=False).config() == {
        "type": "layernorm", "normalized_shape": [2, 3], "eps": 1e-6, "elementwise_affine": False
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"LayerNorm\(\(8,\)\): expected input \(N, \.\.\., 8\), got shape \(2, 7\)"):
        ln.forward(np.zeros((2, 7), np.float32))
    with pytest.raises(ValueError, match="normalized_shape must be a positive int"):
        LayerNorm(0)


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_avg_pool(backend, keepdims):
    x = _x((2, 3, 5, 4))
    with build_on(backend, "float64"):
        pool = GlobalAvgPool2D(keepdims=keepdims)
    y = backend.to_numpy(pool.forward(backend.asarray(x, "float64")))
    ref = np.array([[x[n, c].sum() / 20 for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(y, ref[:, :, None, None] if keepdims else ref, rtol=1e-13)
    gradient_check(pool, backend.asarray(x, "float64"), backend)


def _adaptive_ref(x, oh, ow):
    """PyTorch's rule, cell by cell: bins [floor(i H / oh), ceil((i + 1) H / oh))."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            h0, h1 = (i * h) // oh, -(-((i + 1) * h) // oh)
            w0, w1 = (j * w) // ow, -(-((j + 1) * w) // ow)
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


@pytest.mark.parametrize(("hw", "out"), [((6, 6), (3, 3)), ((7, 5), (3, 2)), ((5, 5), (5, 5)), ((4, 9), (1, 4))])
def test_adaptive_avg_pool(backend, hw, out):
    x = _x((2, 2, *hw), seed=7)
    with build_on(backend, "float64"):
        pool = AdaptiveAvgPool2D(out)
    y = backend.to_numpy(pool.forward(backend.asarray(x, "float64")))
    np.testing.assert_allclose(y, _adaptive_ref(x, *out), rtol=1e-12, atol=1e-14)
    gradient_check(pool, backend.asarray(x, "float64"), backend)


def test_adaptive_pool_bins_hand_computed():
    # H = 5 into 3 bins: rows [0, 2), [1, 4), [3, 5) (overlapping), as torch.nn.AdaptiveAvgPool1d
    x = np.arange(5.0).reshape(1, 1, 5, 1)
    y = AdaptiveAvgPool2D((3, 1)).forward(x.astype(np.float32))
    np.testing.assert_allclose(y.ravel(), [0.5, 2.0, 3.5])
    assert AdaptiveAvgPool2D(2).config() == {"type": "adaptiveavgpool2d", "output_size": [2, 2]}
    with pytest.raises(ValueError, match="output_size must be an int >= 1"):
        AdaptiveAvgPool2D(0)
