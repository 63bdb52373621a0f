"""Conv2D's launch-bound path (conv_wide.py) gives the chunked im2col path's results."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.backends import get_backend
from xnet.nn.conv import Conv2D
from xnet.nn.conv_wide import _placement, window_index
from xnet.nn.module import build_on

# Conv2D kwargs, (C_in, C_out, H, W): the shapes where the transposed convolution's placement
# of the gradient differs (stride, dilation, padding wider than the kernel, windows that miss
# the last rows)
CASES = [
    ({"kernel_size": 3, "padding": 1}, (3, 4, 6, 5)),
    ({"kernel_size": 3, "stride": 2}, (2, 3, 7, 6)),
    ({"kernel_size": 2, "stride": 3, "padding": 1}, (2, 3, 8, 7)),
    ({"kernel_size": 3, "dilation": 2, "padding": (2, 1)}, (2, 3, 7, 6)),
    ({"kernel_size": 1, "padding": 2}, (2, 2, 3, 4)),
    ({"kernel_size": (2, 3), "stride": (1, 2), "padding": (1, 0), "bias": False}, (2, 4, 6, 7)),
    ({"kernel_size": 3, "padding": "same", "groups": 2}, (4, 6, 5, 5)),
    ({"kernel_size": 3, "groups": 3}, (3, 6, 5, 5)),
]


def _run(launch_bound: bool, kwargs: dict, shape: tuple, chunk_bytes: int | None, input_grad: bool = True):
    backend = get_backend("cpu")
    backend.launch_bound = launch_bound
    if chunk_bytes is not None:
        backend.chunk_bytes = chunk_bytes
    c_in, c_out, H, W = shape
    with build_on(backend, "float64"):
        layer = Conv2D(c_in, c_out, init="xavier_uniform", bias_init="normal(std=0.5)", **kwargs)
    layer.needs_input_grad = input_grad
    rng = np.random.default_rng(0)
    out = []
    for _ in range(2):  # twice: reused buffers hold the second step's values, gradients add up
        x = rng.standard_normal((5, c_in, H, W))
        y = layer.forward(x)
        g = rng.standard_normal(y.shape)
        dx = layer.backward(g)
        out += [np.array(y), None if dx is None else np.array(dx)]
    out += [np.array(p.grad) for p in layer.parameters()]
    return out


@pytest.mark.parametrize("kwargs, shape", CASES)
@pytest.mark.parametrize("chunk_bytes", [None, 1])  # one chunk, or one sample a chunk
def test_wide_path_equals_the_chunked_path(kwargs, shape, chunk_bytes):
    want = _run(False, kwargs, shape, None)
    got = _run(True, kwargs, shape, chunk_bytes)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_without_input_gradient_only_the_parameters_get_one():
    kwargs, shape = CASES[0]
    want = _run(False, kwargs, shape, None, input_grad=False)
    got = _run(True, kwargs, shape, None, input_grad=False)
    assert got[1] is None and got[3] is None
    for a, b in zip(got, want, strict=True):
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_window_index_reads_each_window():
    # a 2x2 kernel, stride 2 over one 4x5 sample: window (i, j) cell (a, b) is row 2i+a, column 2j+b
    idx = window_index(1, (4, 5), (2, 2), (2, 2), (1, 1), (2, 2), flip=False).reshape(2, 2, 1, 2, 2)
    for a in range(2):
        for b in range(2):
            for i in range(2):
                for j in range(2):
                    assert idx[a, b, 0, i, j] == (2 * i + a) * 5 + 2 * j + b
    flipped = window_index(2, (4, 5), (2, 2), (1, 1), (1, 1), (3, 4), flip=True).reshape(2, 2, 2, 3, 4)
    assert flipped[0, 0, 1, 0, 0] == 20 + 1 * 5 + 1  # sample 1, kernel cell (0, 0) reads offset (1, 1)


@pytest.mark.parametrize(
    "offset, step, count, size", [(2, 1, 4, 8), (-1, 2, 4, 6), (-3, 1, 5, 3), (5, 2, 3, 5), (0, 3, 4, 7)]
)
def test_placement_keeps_the_items_inside(offset, step, count, size):
    got = _placement(offset, step, count, size)
    kept = [i for i in range(count) if 0 <= offset + i * step < size]
    if not kept:
        assert got is None
        return
    src, dst = got
    assert list(range(count))[src] == kept
    assert list(range(size))[dst] == [offset + i * step for i in kept]
