"""MaxPool2D and AvgPool2D: forward against naive loops, finite differences, ties, errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import gradient_check

from xnet.nn.module import build_on
from xnet.nn.pooling import AvgPool2D, MaxPool2D


def naive_pool(x, kind, kernel, stride, padding):
    """One window at a time; max pads with -inf, avg counts padding zeros (count_include_pad)."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    fill = -np.inf if kind == "max" else 0.0
    xp_ = np.full((N, C, H + 2 * ph, W + 2 * pw), fill)
    xp_[:, :, ph : ph + H, pw : pw + W] = x
    Ho, Wo = (xp_.shape[2] - kh) // sh + 1, (xp_.shape[3] - kw) // sw + 1
    y = np.zeros((N, C, Ho, Wo))
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    win = xp_[n, c, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    y[n, c, i, j] = win.max() if kind == "max" else win.sum() / (kh * kw)
    return y


# name: (H, W, kwargs, oracle (kernel, stride, padding))
CASES = {
    "2x2_fast": (6, 4, {"kernel_size": 2}, ((2, 2), (2, 2), (0, 0))),
    "2x2_fast_odd": (5, 7, {"kernel_size": 2}, ((2, 2), (2, 2), (0, 0))),
    "3x3_s2_p1": (6, 5, {"kernel_size": 3, "stride": 2, "padding": 1}, ((3, 3), (2, 2), (1, 1))),
    "2x2_s1": (4, 5, {"kernel_size": 2, "stride": 1}, ((2, 2), (1, 1), (0, 0))),
    "3x3_default_stride": (7, 6, {"kernel_size": 3}, ((3, 3), (3, 3), (0, 0))),
    "rect_pad": (5, 6, {"kernel_size": (3, 2), "stride": (1, 2), "padding": (1, 0)},
                 ((3, 2), (1, 2), (1, 0))),
}  # fmt: skip
KINDS = {"max": MaxPool2D, "avg": AvgPool2D}


def _distinct(shape, seed):
    """Values at least 0.05 apart, so no window has a tie and eps=1e-6 never flips an arg-max."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n).reshape(shape) - n / 2) * 0.05


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("case", list(CASES))
def test_forward_matches_naive_loops(backend, dtype, kind, case):
    H, W, kwargs, (kernel, stride, padding) = CASES[case]
    with build_on(backend, dtype):
        layer = KINDS[kind](**kwargs)
    x = np.random.default_rng(0).standard_normal((2, 3, H, W)).astype(dtype)
    got = backend.to_numpy(layer.forward(backend.asarray(x)))
    expected = naive_pool(x.astype(np.float64), kind, kernel, stride, padding)
    assert got.dtype == np.dtype(dtype) and got.shape == expected.shape
    tol = 1e-6 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("case", list(CASES))
def test_gradient_check(backend, kind, case):
    H, W, kwargs, _ = CASES[case]
    with build_on(backend, "float64"):
        layer = KINDS[kind](**kwargs)
    x = backend.asarray(_distinct((2, 2, H, W), seed=1), "float64")
    gradient_check(layer, x, backend)


@pytest.mark.parametrize(
    "kwargs", [{"kernel_size": 2}, {"kernel_size": 3}, {"kernel_size": 2, "padding": 1}]
)
def test_max_gradient_on_ties_goes_to_first_position_only(backend, kwargs):
    # all-equal input: every window is one big tie. Windows do not overlap in these cases, so
    # each window's gradient must land on exactly one cell: its first real cell in row-major
    # order (padding cells hold -inf and never win).
    with build_on(backend, "float64"):
        layer = MaxPool2D(**kwargs)
    x = backend.asarray(np.full((1, 2, 6, 6), 3.0), "float64")
    y = layer.forward(x)
    g = np.arange(1, np.prod(y.shape) + 1, dtype=np.float64).reshape(tuple(y.shape))
    dx = backend.to_numpy(layer.backward(backend.asarray(g, "float64")))
    k, p = layer.kernel_size[0], layer.padding[0]
    expected = np.zeros((1, 2, 6, 6))
    for i in range(g.shape[2]):
        for j in range(g.shape[3]):
            r, c = max(i * k - p, 0), max(j * k - p, 0)
            expected[:, :, r, c] += g[:, :, i, j]
    np.testing.assert_array_equal(dx, expected)
    assert np.count_nonzero(dx) == g.size


def test_max_gradient_partial_tie_picks_first_in_row_major_order(backend):
    with build_on(backend, "float64"):
        fast, general = MaxPool2D(2), MaxPool2D(2, stride=2, padding=1)
    # one 2x2 window [[1, 5], [5, 2]]: the 5 at (0, 1) comes first
    x = backend.asarray(np.array([[[[1.0, 5.0], [5.0, 2.0]]]]), "float64")
    fast.forward(x)
    np.testing.assert_array_equal(
        backend.to_numpy(fast.backward(backend.asarray(np.ones((1, 1, 1, 1)), "float64"))),
        [[[[0.0, 1.0], [0.0, 0.0]]]],
    )
    # padded 2x2 windows over a 3x3 input: x[0, 0] | x[0, 1:3] | x[1:3, 0] | x[1:3, 1:3]
    x2 = backend.asarray(
        np.array([[[[9.0, 4.0, 4.0], [7.0, 3.0, 6.0], [7.0, 6.0, 6.0]]]]), "float64"
    )
    y = general.forward(x2)
    np.testing.assert_array_equal(backend.to_numpy(y), [[[[9.0, 4.0], [7.0, 6.0]]]])
    dx = backend.to_numpy(general.backward(backend.asarray(np.ones((1, 1, 2, 2)), "float64")))
    np.testing.assert_array_equal(dx, [[[[1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]]])


def test_avg_counts_padding_zeros(backend):
    with build_on(backend, "float64"):
        layer = AvgPool2D(3, stride=1, padding=1)
    y = backend.to_numpy(layer.forward(backend.asarray(np.ones((1, 1, 3, 3)), "float64")))
    # corner windows hold 4 ones of 9 cells, edges 6, the centre 9
    np.testing.assert_allclose(y[0, 0], np.array([[4, 6, 4], [6, 9, 6], [4, 6, 4]]) / 9)


def test_max_padding_is_minus_infinity(backend):
    with build_on(backend, "float64"):
        layer = MaxPool2D(3, stride=1, padding=1)
    y = backend.to_numpy(layer.forward(backend.asarray(np.full((1, 1, 3, 3), -7.0), "float64")))
    np.testing.assert_array_equal(y, np.full((1, 1, 3, 3), -7.0))


def test_outputs_do_not_alias_input(backend):
    # a 1x1 max pool would be a view of x; the result must be independent of later changes to x
    with build_on(backend, "float64"):
        layer = MaxPool2D(1, stride=2)
    x = backend.asarray(np.arange(16.0).reshape(1, 1, 4, 4), "float64")
    y = layer.forward(x)
    x[...] = 0.0
    np.testing.assert_array_equal(backend.to_numpy(y), [[[[0.0, 2.0], [8.0, 10.0]]]])


@pytest.mark.parametrize("kind", list(KINDS))
def test_config(backend, kind):
    with build_on(backend, "float32"):
        layer = KINDS[kind]((3, 2), stride=1, padding=(1, 0))
        cfg = layer.config()
        assert cfg == {
            "type": f"{kind}pool2d",
            "kernel_size": [3, 2],
            "stride": 1,
            "padding": [1, 0],
        }
        assert KINDS[kind](**{k: v for k, v in cfg.items() if k != "type"}).config() == cfg
        assert KINDS[kind](2).config() == {"type": f"{kind}pool2d", "kernel_size": 2, "stride": 2,
                                           "padding": 0}  # fmt: skip


@pytest.mark.parametrize("kind", list(KINDS))
def test_input_errors_name_layer_and_shapes(backend, kind):
    cls = KINDS[kind]
    name = cls.__name__
    with build_on(backend, "float32"):
        layer, big = cls(2), cls(4, padding=1)
    with pytest.raises(
        ValueError, match=rf"{name}\(kernel_size=2\): expected 4-D input .*\(2, 8, 8\)"
    ):
        layer.forward(backend.zeros((2, 8, 8), "float32"))
    with pytest.raises(
        ValueError, match=rf"{name}\(kernel_size=2\): window 2x2 .*padded input 1x5"
    ):
        layer.forward(backend.zeros((2, 3, 1, 5), "float32"))
    with pytest.raises(ValueError, match=rf"{name}\(kernel_size=4\): window 4x4 .*padded input 3x4 "
                                         r"\(input shape \(1, 1, 1, 2\)"):  # fmt: skip
        big.forward(backend.zeros((1, 1, 1, 2), "float32"))


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"kernel_size": 2, "padding": 2}, r"padding \(2, 2\) must be at most half the kernel"),
        ({"kernel_size": 0}, r"kernel_size must be an int >= 1"),
        ({"kernel_size": 2, "stride": 0}, r"stride must be an int >= 1"),
        ({"kernel_size": 2, "padding": -1}, r"padding must be an int >= 0"),
    ],
)
def test_bad_arguments(backend, kind, kwargs, pattern):
    with build_on(backend, "float32"), pytest.raises(ValueError, match=pattern):
        KINDS[kind](**kwargs)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("kernel", [2, 3])
def test_backward_before_forward_is_a_clear_error(backend, kind, kernel):
    with build_on(backend, "float32"):
        layer = KINDS[kind](kernel)
    with pytest.raises(RuntimeError, match=f"{KINDS[kind].__name__}: backward called before forward"):
        layer.backward(backend.zeros((1, 1, 2, 2), "float32"))
