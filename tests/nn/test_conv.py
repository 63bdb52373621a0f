"""Conv2D: forward against a naive loop convolution, gradients by finite differences, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import gradient_check

from xnet.nn import windows
from xnet.nn.conv import Conv2D
from xnet.nn.module import build_on


def naive_conv2d(x, w, b, stride, pads, dilation, groups):
    """The textbook definition, one output value at a time (the test's independent oracle).

    x (N, C, H, W), w (O, C/groups, kh, kw), pads (top, bottom, left, right).
    """
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    top, bottom, left, right = pads
    xp_ = np.zeros((N, C, H + top + bottom, W + left + right))
    xp_[:, :, top : top + H, left : left + W] = x
    Ho = (xp_.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    Wo = (xp_.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((N, O, Ho, Wo))
    Og = O // groups
    for n in range(N):
        for o in range(O):
            g = o // Og
            for i in range(Ho):
                for j in range(Wo):
                    acc = 0.0 if b is None else b[o]
                    for c in range(Cg):
                        for p in range(kh):
                            for q in range(kw):
                                r = i * stride[0] + p * dilation[0]
                                s = j * stride[1] + q * dilation[1]
                                acc += w[o, c, p, q] * xp_[n, g * Cg + c, r, s]
                    y[n, o, i, j] = acc
    return y


# name: (C_in, C_out, H, W, Conv2D kwargs, oracle (stride, pads, dilation, groups))
NO_PAD, PAD1 = (0, 0, 0, 0), (1, 1, 1, 1)
CASES = {
    "plain": (3, 4, 6, 5, {"kernel_size": 3}, ((1, 1), NO_PAD, (1, 1), 1)),
    "stride2": (2, 3, 7, 6, {"kernel_size": 3, "stride": 2}, ((2, 2), NO_PAD, (1, 1), 1)),
    "padding1": (2, 3, 5, 5, {"kernel_size": 3, "padding": 1}, ((1, 1), PAD1, (1, 1), 1)),
    "same_k3": (2, 3, 5, 6, {"kernel_size": 3, "padding": "same"}, ((1, 1), PAD1, (1, 1), 1)),
    # even kernel: PyTorch pads 1 before and 2 after
    "same_k4": (2, 3, 5, 6, {"kernel_size": 4, "padding": "same"}, ((1, 1), (1, 2, 1, 2), (1, 1), 1)),
    "dilation2": (2, 3, 6, 6, {"kernel_size": 3, "dilation": 2}, ((1, 1), NO_PAD, (2, 2), 1)),
    "groups2": (4, 6, 5, 5, {"kernel_size": 3, "padding": 1, "groups": 2},
                ((1, 1), PAD1, (1, 1), 2)),
    "depthwise": (3, 6, 5, 5, {"kernel_size": 3, "groups": 3}, ((1, 1), NO_PAD, (1, 1), 3)),
    "no_bias": (2, 3, 5, 5, {"kernel_size": 2, "bias": False}, ((1, 1), NO_PAD, (1, 1), 1)),
    "rect_mixed": (2, 4, 6, 7, {"kernel_size": (2, 3), "stride": (1, 2), "padding": (1, 0)},
                   ((1, 2), (1, 1, 0, 0), (1, 1), 1)),
}  # fmt: skip


def _build(backend, dtype, c_in, c_out, kwargs, bias_init="normal(std=0.5)"):
    with build_on(backend, dtype):
        # a non-zero bias so the forward test sees it
        return Conv2D(c_in, c_out, init="xavier_uniform", bias_init=bias_init, **kwargs)


@pytest.mark.parametrize("case", list(CASES))
def test_forward_matches_naive_loops(backend, dtype, case):
    c_in, c_out, H, W, kwargs, (stride, pads, dilation, groups) = CASES[case]
    layer = _build(backend, dtype, c_in, c_out, kwargs)
    x = np.random.default_rng(0).standard_normal((2, c_in, H, W))
    y = layer.forward(backend.asarray(x, dtype))
    w = backend.to_numpy(layer.weight.data).astype(np.float64)
    b = None if layer.bias is None else backend.to_numpy(layer.bias.data).astype(np.float64)
    assert (layer.bias is None) == (kwargs.get("bias") is False)
    expected = naive_conv2d(
        x.astype(dtype).astype(np.float64), w, b, stride, pads, dilation, groups
    )
    got = backend.to_numpy(y)
    assert got.dtype == np.dtype(dtype)
    assert got.shape == expected.shape
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
    if kwargs.get("padding") == "same":
        assert got.shape[2:] == (H, W)


@pytest.mark.parametrize("case", list(CASES))
def test_gradient_check(backend, case):
    c_in, c_out, H, W, kwargs, _ = CASES[case]
    layer = _build(backend, "float64", c_in, c_out, kwargs)
    x = backend.asarray(np.random.default_rng(2).standard_normal((2, c_in, H, W)), "float64")
    gradient_check(layer, x, backend)


def test_gradient_dtypes_stay_float32(backend):
    layer = _build(backend, "float32", 2, 3, {"kernel_size": 3, "padding": 1})
    x = backend.asarray(np.ones((2, 2, 4, 4)), "float32")
    y = layer.forward(x)
    dx = layer.backward(y * 0 + 1)
    for a in (y, dx, layer.weight.grad, layer.bias.grad):
        assert backend.to_numpy(a).dtype == np.float32


def test_backward_accumulates_and_bias_grad_is_sum(backend):
    layer = _build(backend, "float64", 2, 3, {"kernel_size": 3, "padding": 1})
    x = backend.asarray(np.random.default_rng(3).standard_normal((2, 2, 4, 4)), "float64")
    g = np.random.default_rng(4).standard_normal((2, 3, 4, 4))
    layer.forward(x)
    layer.backward(backend.asarray(g, "float64"))
    first = backend.to_numpy(layer.weight.grad).copy()
    layer.forward(x)
    layer.backward(backend.asarray(g, "float64"))
    np.testing.assert_allclose(backend.to_numpy(layer.weight.grad), 2 * first, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(layer.bias.grad), 2 * g.sum(axis=(0, 2, 3)))


def test_results_are_not_aliased_to_reused_buffers(backend):
    # forward/backward reuse workspaces between steps: earlier results must stay intact
    layer = _build(backend, "float64", 2, 3, {"kernel_size": 3, "padding": 1})
    rng = np.random.default_rng(5)
    x1, x2 = (backend.asarray(rng.standard_normal((2, 2, 5, 5)), "float64") for _ in range(2))
    g = backend.asarray(rng.standard_normal((2, 3, 5, 5)), "float64")
    y1 = layer.forward(x1)
    y1_host = backend.to_numpy(y1).copy()
    dx1 = layer.backward(g)
    dx1_host = backend.to_numpy(dx1).copy()
    y2 = layer.forward(x2)
    dx2 = layer.backward(g)
    np.testing.assert_array_equal(backend.to_numpy(y1), y1_host)
    np.testing.assert_array_equal(backend.to_numpy(dx1), dx1_host)
    assert not np.allclose(backend.to_numpy(y2), y1_host)
    assert not np.allclose(backend.to_numpy(dx2), 0)


@pytest.mark.parametrize("groups, stride", [(1, 1), (2, 2)])
def test_batch_chunks_give_the_one_chunk_result(backend, monkeypatch, groups, stride):
    # the same layer and data, once as one chunk and once cut into 3 (run on several threads on
    # the CPU backend): outputs and all three gradients agree
    x = np.random.default_rng(6).standard_normal((5, 2, 5, 5))
    g_shape = (5, 4, 3, 3) if stride == 2 else (5, 4, 5, 5)
    g = np.random.default_rng(7).standard_normal(g_shape)
    layer = _build(backend, "float64", 2, 4, {"kernel_size": 3, "padding": 1, "groups": groups, "stride": stride})
    monkeypatch.setattr(backend, "threads", 1, raising=False)  # chunk counts as on one thread
    results = []
    for chunk_bytes in (1 << 30, 3000):  # windows per sample: 3600 bytes at stride 1, 1296 at 2
        monkeypatch.setattr(backend, "chunk_bytes", chunk_bytes, raising=False)
        layer.zero_grad()
        assert len(layer._chunks(5, tuple(g_shape[2:]))) == (1 if chunk_bytes > 1e6 else {1: 5, 2: 3}[stride])
        y = layer.forward(backend.asarray(x, "float64"))
        dx = layer.backward(backend.asarray(g, "float64"))
        results.append([backend.to_numpy(a) for a in (y, dx, layer.weight.grad, layer.bias.grad)])
    for one, chunked in zip(*results, strict=True):
        np.testing.assert_allclose(chunked, one, rtol=1e-12, atol=1e-12)


def test_backward_after_eval_forward_uses_that_forwards_input(backend):
    layer = _build(backend, "float64", 2, 3, {"kernel_size": 3, "padding": 1})
    x = backend.asarray(np.random.default_rng(6).standard_normal((5, 2, 4, 4)), "float64")
    g = backend.asarray(np.random.default_rng(7).standard_normal((5, 3, 4, 4)), "float64")
    layer.forward(x)
    dx_train = backend.to_numpy(layer.backward(g))
    dw_train = backend.to_numpy(layer.weight.grad).copy()
    layer.zero_grad()
    layer.eval()
    layer.forward(x)
    np.testing.assert_allclose(backend.to_numpy(layer.backward(g)), dx_train, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(layer.weight.grad), dw_train, rtol=1e-12)


def test_default_init_is_kaiming_uniform_with_group_fan_in(backend):
    with build_on(backend, "float64"):
        layer = Conv2D(4, 8, 3, groups=2)
    w = backend.to_numpy(layer.weight.data)
    assert w.shape == (8, 2, 3, 3)
    bound = math.sqrt(2.0) * math.sqrt(3.0 / (2 * 3 * 3))  # fan_in = C_in/groups * kh * kw
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    np.testing.assert_array_equal(backend.to_numpy(layer.bias.data), 0)


def test_config_round_trip(backend):
    with build_on(backend, "float64"):
        layer = Conv2D(4, 6, (3, 2), stride=(1, 2), padding="same" if False else (1, 0),
                       dilation=2, groups=2, bias=False, init="xavier_uniform")  # fmt: skip
        cfg = layer.config()
        assert cfg == {
            "type": "conv2d", "in_channels": 4, "out_channels": 6, "kernel_size": [3, 2],
            "stride": [1, 2], "padding": [1, 0], "dilation": 2, "groups": 2, "bias": False,
            "init": "xavier_uniform", "bias_init": "zeros",
        }  # fmt: skip
        rebuilt = Conv2D(**{k: v for k, v in cfg.items() if k != "type"})
        assert rebuilt.config() == cfg
        assert Conv2D(1, 2, 3, padding="same").config()["padding"] == "same"


def test_wrong_channel_count_message(backend):
    layer = _build(backend, "float32", 3, 4, {"kernel_size": 3})
    with pytest.raises(ValueError) as e:
        layer.forward(backend.zeros((64, 1, 28, 28), "float32"))
    assert str(e.value) == "Conv2D(in_channels=3): input has 1 channel, shape (64, 1, 28, 28)"


def test_wrong_rank_message(backend):
    layer = _build(backend, "float32", 3, 4, {"kernel_size": 3})
    with pytest.raises(ValueError, match=r"Conv2D\(in_channels=3\).*4-D.*\(64, 3, 28\)"):
        layer.forward(backend.zeros((64, 3, 28), "float32"))


def test_kernel_larger_than_padded_input(backend):
    layer = _build(backend, "float32", 1, 2, {"kernel_size": 5, "padding": 1})
    with pytest.raises(ValueError, match=r"Conv2D\(in_channels=1\).*5x5.*padded input 4x4"):
        layer.forward(backend.zeros((2, 1, 2, 2), "float32"))
    dilated = _build(backend, "float32", 1, 2, {"kernel_size": 3, "dilation": 3})
    with pytest.raises(ValueError, match=r"dilation 3x3.*spans 7x7.*6x6"):
        dilated.forward(backend.zeros((2, 1, 6, 6), "float32"))


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"groups": 3}, r"groups=3 must divide both in_channels=4 and out_channels=6"),
        ({"groups": 4}, r"groups=4 must divide both in_channels=4 and out_channels=6"),
        ({"stride": 2, "padding": "same"}, r"padding='same' is not supported for strided"),
        ({"padding": "full"}, r"padding must be an int, a pair, 'same' or 'valid', got 'full'"),
        ({"padding": -1}, r"padding must be an int >= 0"),
        ({"kernel_size": 0}, r"kernel_size must be an int >= 1.*got 0"),
        ({"kernel_size": (3, 3, 3)}, r"kernel_size must be.*got \(3, 3, 3\)"),
        ({"stride": True}, r"stride must be an int >= 1"),
        ({"dilation": 1.5}, r"dilation must be an int >= 1"),
    ],
)
def test_bad_arguments_at_construction(backend, kwargs, pattern):
    args = {"kernel_size": 3, **kwargs}
    with (
        build_on(backend, "float32"),
        pytest.raises(ValueError, match=r"Conv2D\(in_channels=4\): " + pattern),
    ):
        Conv2D(4, 6, **args)


def test_valid_padding_and_channel_errors(backend):
    with build_on(backend, "float32"):
        assert Conv2D(1, 1, 3, padding="valid").pads == (0, 0, 0, 0)
        with pytest.raises(ValueError, match="out_channels must be a positive int, got 0"):
            Conv2D(1, 0, 3)


@pytest.mark.parametrize("groups, stride, dilation", [(1, (1, 1), (1, 1)), (2, (2, 1), (1, 2))])
def test_col2im_is_the_adjoint_of_im2col(backend, groups, stride, dilation):
    # <col2im(c), x> == <c, im2col(x)> for every x and c: col2im sums overlapping windows
    N, C, kh, kw, Ho, Wo = 3, 4, 3, 2, 5, 6
    Hp = stride[0] * (Ho - 1) + dilation[0] * (kh - 1) + 1 + 1  # one row no window reaches
    Wp = stride[1] * (Wo - 1) + dilation[1] * (kw - 1) + 1
    rng = np.random.default_rng(8)
    x = rng.standard_normal((N, C, Hp, Wp))
    c = rng.standard_normal((groups, kh, kw, C // groups, N, Ho, Wo))
    args = ((kh, kw), stride, dilation)
    cols = windows.im2col(backend, backend.asarray(x, "float64"), *args, (Ho, Wo), groups)
    # the output buffer's old contents must not leak into the result
    out = backend.full((C, N, Hp, Wp), 7.0, "float64")
    back = windows.col2im(backend, backend.asarray(c, "float64"), out, *args)
    assert tuple(cols.shape) == c.shape and tuple(back.shape) == (C, N, Hp, Wp)
    lhs = np.sum(backend.to_numpy(back) * x.transpose(1, 0, 2, 3))
    np.testing.assert_allclose(lhs, np.sum(c * backend.to_numpy(cols)), rtol=1e-12)
    # and im2col itself: window (n, ho, wo) at offset (i, j) holds x at the strided position
    n, ho, wo, i, j, ch = 1, 2, 3, 2, 1, 3
    r, q = ho * stride[0] + i * dilation[0], wo * stride[1] + j * dilation[1]
    Cg = C // groups
    got = backend.to_numpy(cols)[ch // Cg, i, j, ch % Cg, n, ho, wo]
    assert got == x[n, ch, r, q]


def test_backward_before_forward_is_a_clear_error(backend):
    layer = _build(backend, "float32", 1, 2, {"kernel_size": 3})
    with pytest.raises(RuntimeError, match="Conv2D: backward called before forward"):
        layer.backward(backend.zeros((1, 2, 3, 3), "float32"))
