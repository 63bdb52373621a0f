"""The NumPy backend's compiled CPU kernels (cpu_kernels/, Numba) against the Array API reference bodies.

Each test runs the same layer, loss or optimizer twice on the NumPy backend: once with the kernels,
once with them refused (the reference body, which defines the numbers). Elementwise kernels must
give the same bits; sums may differ by rounding (float64 to 1e-12, float32 to 1e-5); winners,
masks and indices exactly. The kernels compile once per test session (and come from Numba's disk
cache after that), shared by every test here.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_fast_paths import CASES, STEPS, assert_flushed_like_the_reference, case_id, make_params, run_steps

from xnet.backends import cpu_threads, get_backend
from xnet.backends.cpu_kernels import loader
from xnet.nn.activations import ReLU
from xnet.nn.batchnorm import BatchNorm2D
from xnet.nn.module import build_on
from xnet.nn.pooling import MaxPool2D
from xnet.nn.sequential import Sequential
from xnet.optim import Adadelta, Adamax, Lion, NAdam, RAdam

pytestmark = pytest.mark.skipif(loader.kernels() is None, reason=f"compiled CPU kernels off: {loader.reason()}")

TOL = {"float32": {"rtol": 1e-5, "atol": 1e-6}, "float64": {"rtol": 1e-12, "atol": 1e-13}}
FUSED = (
    "fused_im2col",
    "fused_col2im",
    "fused_channel_moments",
    "fused_norm_relu_pool",
    "fused_pool_grad_sums",
    "fused_pool_grad_input",
    "fused_dropout",
    "fused_relu",
    "fused_softmax_cross_entropy",
    "fused_conv2d",
    "fused_conv2d_backward",
    "fused_take_normalized",
)


def reference_backend(seed: int = 0):
    """A NumPy backend whose compiled kernels all decline: every caller runs its reference body."""
    backend = get_backend("cpu", seed)
    for name in FUSED:
        setattr(backend, name, lambda *args: None)
    return backend


def block(backend, dtype: str, norm: bool) -> Sequential:
    """[BatchNorm2D(3) ->] ReLU -> MaxPool2D(2), gamma and beta away from 1 and 0."""
    with build_on(backend, dtype):
        model = Sequential(*([BatchNorm2D(3)] if norm else []), ReLU(), MaxPool2D(2))
    rng = np.random.default_rng(0)
    for p in model.parameters():
        p.data = backend.asarray(rng.standard_normal(tuple(p.data.shape)) * 0.5 + 0.3, dtype)
    return model


def step(backend, model, x, g, training: bool) -> list[np.ndarray]:
    """Output, input gradient, parameter gradients and running statistics after one forward and backward."""
    model.train(training)
    model.zero_grad()
    y = model.forward(backend.asarray(x))
    dx = model.backward(backend.asarray(g))
    return [np.array(a) for a in [y, dx, *(p.grad for p in model.parameters()), *(b for _, b in model.named_buffers())]]


def windows_input(dtype: str, nan: bool = False) -> np.ndarray:
    """(6, 3, 8, 10) values on a coarse grid: windows with ties, and negative windows the ReLU turns off."""
    x = np.round(np.random.default_rng(1).standard_normal((6, 3, 8, 10)) * 2) / 2
    if nan:
        x[1, 2, 4, 7] = np.nan  # one window of sample 1, channel 2
    return x.astype(dtype)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("norm", [True, False], ids=["bn-relu-pool", "relu-pool"])
def test_norm_relu_pool_gives_the_reference_step(dtype, training, norm):
    x = windows_input(dtype)
    g = np.random.default_rng(2).standard_normal((6, 3, 4, 5)).astype(dtype)
    fast, ref = get_backend("cpu"), reference_backend()
    got = step(fast, block(fast, dtype, norm), x, g, training)
    want = step(ref, block(ref, dtype, norm), x, g, training)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, **TOL[dtype])
    if not norm or not training:  # no batch sums: output and input gradient are elementwise, the same bits
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("shape", [(6, 3, 8, 10), (1, 2, 1, 3), (300, 4, 6, 6)])
def test_channel_moments_give_the_batch_statistics(dtype, shape):
    x = (np.random.default_rng(3).standard_normal(shape) * 3 + 10).astype(dtype)  # a mean far from 0
    mean, var = get_backend("cpu").fused_channel_moments(x)
    assert mean.dtype == var.dtype == x.dtype
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=(0, 2, 3)), **TOL[dtype])
    np.testing.assert_allclose(var, x.astype(np.float64).var(axis=(0, 2, 3)), **TOL[dtype])


def test_the_kernel_gives_the_reference_winners(dtype):
    backend = get_backend("cpu")
    x = windows_input(dtype, nan=True)
    scale, shift = np.array([0.5, -1.0, 2.0], dtype), np.array([0.25, 0.0, -0.5], dtype)
    y, winner = backend.fused_norm_relu_pool(x, scale, shift)
    z = x * scale.reshape(1, 3, 1, 1) + shift.reshape(1, 3, 1, 1)
    q = z.reshape(6, 3, 4, 2, 5, 2).transpose(0, 1, 2, 4, 3, 5).reshape(6, 3, 4, 5, 4)
    with np.errstate(invalid="ignore"):
        first = np.argmax(q, axis=-1)  # argmax: the first maximum in row-major order (NaN counts as it)
        m = np.max(q, axis=-1)
    want_winner = np.where(np.isnan(m), 3, first) + 4 * (m <= 0)
    np.testing.assert_array_equal(winner, want_winner)
    np.testing.assert_array_equal(y, np.where(m > 0, m, 0 * m))


def test_a_nan_in_a_window_gives_nan_and_takes_the_gradient_at_cell_3(dtype):
    x = windows_input(dtype, nan=True)
    g = np.ones((6, 3, 4, 5), dtype)
    fast, ref = get_backend("cpu"), reference_backend()
    got = step(fast, block(fast, dtype, False), x, g, True)
    want = step(ref, block(ref, dtype, False), x, g, True)
    assert np.isnan(got[0][1, 2, 2, 3]) and np.isnan(got[0]).sum() == 1  # the NaN is passed on, to its window only
    np.testing.assert_array_equal(got[1][1, 2, 4:6, 6:8], [[0, 0], [0, 1]])  # cell 3 of that window
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)  # NaNs in the same places


# optimizers with a compiled CPU kernel but no CUDA one (test_fast_paths.CASES holds those with both):
# each decay mode each supports (weights only, or decay_all), and their hyper-parameters away from the defaults
CPU_CASES = [
    (Adadelta, {}),
    (Adadelta, {"lr": 0.5, "rho": 0.8, "eps": 1e-3, "weight_decay": 0.05}),
    (Adamax, {}),
    (Adamax, {"weight_decay": 0.1}),  # coupled
    (Adamax, {"betas": (0.7, 0.9), "eps": 1e-3, "weight_decay": 0.05, "decay_all": True}),
    (NAdam, {}),
    (NAdam, {"weight_decay": 0.1}),  # coupled
    (NAdam, {"weight_decay": 0.2, "decoupled_weight_decay": True}),
    (NAdam, {"betas": (0.8, 0.95), "momentum_decay": 0.05, "eps": 1e-3, "weight_decay": 0.1, "decay_all": True}),
    (NAdam, {"momentum_decay": 0.0, "weight_decay": 0.3, "decoupled_weight_decay": True, "decay_all": True}),
    (RAdam, {}),  # steps 1-5 momentum SGD (the variance is not tractable), 6-8 rectified
    (RAdam, {"weight_decay": 0.1}),  # coupled
    (RAdam, {"weight_decay": 0.3, "decoupled_weight_decay": True, "decay_all": True}),
    (RAdam, {"betas": (0.7, 0.8), "eps": 1e-3, "weight_decay": 0.05, "decoupled_weight_decay": True}),  # 1-6 SGD
    (Lion, {}),
    (Lion, {"weight_decay": 0.5}),  # decoupled, the only mode Lion has
    (Lion, {"betas": (0.5, 0.9), "weight_decay": 1.0, "decay_all": True}),
]
# RAdam switches to its rectified update at step 6 (beta2 0.999) or 7 (beta2 0.8): run past it
LONGER = {RAdam: 8}


@pytest.mark.parametrize("special", [False, True], ids=["ordinary", "subnormal-nan-zero"])
@pytest.mark.parametrize("case", CASES + CPU_CASES, ids=case_id)
def test_optimizer_kernels_give_the_reference_bits(monkeypatch, case, dtype, special):
    """special: run_steps' mix of NaN, zero gradients and states decaying below the smallest normal number."""
    from xnet.backends.cpu_kernels import table

    cls, opts = case
    taken, optimizer = [], table.optimizer

    def spy(name, arrays):
        launch = optimizer(name, arrays)
        taken.append(launch is not None)
        return launch

    monkeypatch.setattr(table, "optimizer", spy)
    steps = LONGER.get(cls, STEPS)
    with np.errstate(all="ignore"):
        got = run_steps(cls, opts, make_params(dtype=dtype), steps=steps, special=special)
        assert taken and all(taken)  # the kernel ran for every parameter
        monkeypatch.setattr(loader, "kernels", lambda: None)  # the Array API bodies
        want = run_steps(cls, opts, make_params(dtype=dtype), steps=steps, special=special)
    assert_flushed_like_the_reference(cls, got, want, n_params=2)


def test_a_large_parameter_is_updated_in_blocks_with_the_same_bits(monkeypatch):
    from xnet.backends.cpu_kernels import table

    monkeypatch.setattr(table, "SPLIT_MIN_VALUES", 4)  # the (7, 5) weight in 3 blocks
    monkeypatch.setattr(table, "POLLING_SPLIT_MIN_VALUES", 4)  # whether the workers poll or not
    monkeypatch.setattr(cpu_threads, "_threads", 3)
    calls = []
    run_chunks = cpu_threads.run_chunks
    monkeypatch.setattr(cpu_threads, "run_chunks", lambda fn, n: calls.append(n) or run_chunks(fn, n))
    got = run_steps(*CASES[1], make_params())
    assert 3 in calls
    monkeypatch.setattr(loader, "kernels", lambda: None)
    for a, b in zip(got, run_steps(*CASES[1], make_params()), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "opts",
    [{}, {"padding": 1}, {"stride": 2, "padding": 2}, {"dilation": 2}, {"groups": 2, "stride": (1, 2)}],
    ids=["plain", "padded", "strided", "dilated", "grouped"],
)
def test_conv_windows_give_the_reference_bits(dtype, opts):
    from xnet.nn.conv import Conv2D

    x = np.random.default_rng(4).standard_normal((5, 10, 9, 8)).astype(dtype)  # 90 taps: im2col, not direct
    g = None
    outs = []
    for backend in (get_backend("cpu"), reference_backend()):
        with build_on(backend, dtype):
            conv = Conv2D(10, 6, 3, **opts)
        conv.weight.data[...] = np.random.default_rng(5).standard_normal(conv.weight.data.shape)
        y = conv.forward(backend.asarray(x))
        g = np.random.default_rng(6).standard_normal(y.shape).astype(dtype) if g is None else g
        outs.append([np.array(a) for a in (y, conv.backward(g), conv.weight.grad, conv.bias.grad)])
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b)  # the same windows into the same BLAS products


def conv_steps(dtype: str, shape: tuple, out: int, opts: dict) -> tuple[list, list]:
    """A Conv2D's step (output, input gradient, parameter gradients) with the compiled kernels and with
    the reference, from the same weights, input and output gradient; and whether each ran a compiled
    forward."""
    from xnet.nn.conv import Conv2D

    opts = {"kernel_size": 3, **opts}
    x = np.random.default_rng(4).standard_normal(shape).astype(dtype)
    outs, taken = [], []
    for backend in (get_backend("cpu"), reference_backend()):
        with build_on(backend, dtype):
            conv = Conv2D(shape[1], out, **opts)
        conv.weight.data[...] = np.random.default_rng(5).standard_normal(conv.weight.data.shape)
        if conv.bias is not None:
            conv.bias.data[...] = np.linspace(-1.0, 2.0, out)
        y = conv.forward(backend.asarray(x))
        taken.append(conv._direct)
        g = np.random.default_rng(6).standard_normal(y.shape).astype(dtype)
        params = [conv.weight.grad] + ([] if conv.bias is None else [conv.bias.grad])
        outs.append([np.array(a) for a in (y, conv.backward(g), *params)])
    return outs, taken


@pytest.mark.parametrize(
    "shape, out, opts",
    [
        ((3, 1, 7, 6), 6, {"padding": 1}),  # a block of four output channels and two more
        ((2, 3, 5, 8), 4, {"padding": "same", "kernel_size": (2, 3), "bias": False}),  # uneven padding
        ((2, 2, 6, 5), 3, {"padding": 0}),  # fewer than four
    ],
    ids=["one-channel", "rgb-same-nobias", "unpadded"],
)
def test_the_direct_convolution_gives_the_reference_step(dtype, shape, out, opts):
    outs, taken = conv_steps(dtype, shape, out, opts)
    assert taken == [True, False]
    for a, b in zip(*outs, strict=True):
        np.testing.assert_allclose(a, b, **TOL[dtype])


def test_the_compiled_convolutions_are_left_to_im2col_where_they_do_not_apply():
    backend = get_backend("cpu")
    # 81 input taps (too many for the direct convolution) and an odd output: no Winograd tiles
    x, w = np.ones((2, 9, 7, 7)), np.ones((5, 9, 3, 3))
    assert backend.fused_conv2d(x, w, None, (1, 1), (1, 1), 1, (5, 5)) is None
    x, w = np.ones((2, 21, 6, 6)), np.ones((5, 21, 2, 2))  # 84 taps of a 2x2 kernel: not F(2x2, 3x3)
    assert backend.fused_conv2d(x, w, None, (1, 1), (1, 1), 1, (5, 5)) is None
    x, w = np.ones((2, 9, 6, 6)), np.ones((5, 9, 3, 3))
    assert backend.fused_conv2d(x, w, None, (2, 2), (1, 1), 1, (2, 2)) is None  # strided
    assert backend.fused_conv2d(x, w, None, (1, 1), (1, 1), 1, (4, 4)).shape == (2, 5, 4, 4)  # Winograd
    x, w = np.ones((2, 1, 6, 6)), np.ones((5, 1, 3, 3))
    assert backend.fused_conv2d(x, w, None, (2, 2), (1, 1), 1, (2, 2)) is None  # strided
    assert backend.fused_conv2d(x, w, None, (1, 1), (2, 2), 1, (2, 2)) is None  # dilated
    assert backend.fused_conv2d(x, w, None, (1, 1), (1, 1), 1, (4, 4)).shape == (2, 5, 4, 4)


@pytest.mark.parametrize(
    "shape, out, opts",
    [
        ((4, 20, 8, 10), 7, {"padding": 1}),  # 180 taps, a 4 x 5 grid of tiles per sample
        ((3, 16, 10, 10), 5, {"padding": 0, "bias": False}),  # unpadded, as pytorch/examples' second layer
        ((37, 9, 4, 4), 4, {"padding": "same"}),  # 81 taps; many samples: chunks over the threads
        ((2, 12, 6, 8), 3, {"padding": (2, 0)}),  # wider than "same" on the rows, none on the columns
        ((1, 33, 2, 2), 17, {"padding": 1}),  # one sample of one tile, odd channel counts
    ],
    ids=["padded", "unpadded-nobias", "many-samples", "uneven-padding", "one-tile"],
)
def test_the_winograd_convolution_gives_the_reference_step(dtype, shape, out, opts):
    outs, taken = conv_steps(dtype, shape, out, opts)
    assert taken == [True, False]  # the compiled forward ran, then the reference's
    # F(2x2, 3x3) and its adjoint round differently: the error is relative to each array's scale
    for got, want in zip(*outs, strict=True):  # output, input gradient, weight and bias gradients
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=0, atol=(2e-6 if dtype == "float32" else 1e-13) * scale)


def test_the_winograd_backward_without_an_input_gradient_gives_the_same_parameter_gradients():
    from xnet.backends.cpu_kernels import table

    backend = get_backend("cpu")
    rng = np.random.default_rng(8)
    xpad, w, g = rng.standard_normal((5, 9, 8, 6)), rng.standard_normal((4, 9, 3, 3)), rng.standard_normal((5, 4, 6, 4))
    with_dx = table.conv2d_backward(backend, xpad, w, g, (1, 1, 1, 1), (5, 9, 6, 4), True)
    without = table.conv2d_backward(backend, xpad, w, g, (1, 1, 1, 1), (5, 9, 6, 4), False)
    assert with_dx[0].shape == (5, 9, 6, 4) and without[0] is None
    for a, b in zip(with_dx[1:], without[1:], strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_winograd_step_shared_out_over_threads_gives_the_same_numbers(monkeypatch):
    from xnet.backends.cpu_kernels import table

    backend = get_backend("cpu")
    rng = np.random.default_rng(9)
    xpad, w, b = rng.standard_normal((7, 10, 6, 8)), rng.standard_normal((6, 10, 3, 3)), rng.standard_normal(6)
    g = rng.standard_normal((7, 6, 4, 6))

    def step() -> list:
        y = backend.fused_conv2d(xpad, w, b, (1, 1), (1, 1), 1, (4, 6))
        return [y, *backend.fused_conv2d_backward(xpad, w, g, (1, 1, 1, 1), (7, 10, 4, 6), True)]

    whole = step()
    monkeypatch.setattr(table, "WINOGRAD_CHUNK_BYTES", 1)  # a sample a chunk: chunks on both threads
    split = step()
    np.testing.assert_array_equal(split[0], whole[0])  # per sample: the same sums
    np.testing.assert_array_equal(split[1], whole[1])
    for got, want in zip(split[2:], whole[2:], strict=True):  # summed over chunks: to rounding
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert all(np.array_equal(again, got) for again, got in zip(step(), split, strict=True))  # the same bits again


def test_a_direct_convolution_shared_out_over_threads_gives_the_same_sums(monkeypatch):
    from xnet.backends.cpu_kernels import table

    backend = get_backend("cpu")
    rng = np.random.default_rng(7)
    xpad, w, b = rng.standard_normal((5, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    g = rng.standard_normal((5, 3, 4, 4))
    whole = [backend.fused_conv2d(xpad, w, b, (1, 1), (1, 1), 1, (4, 4))]
    whole += backend.fused_conv2d_backward(xpad, w, g, (1, 1, 1, 1), (5, 2, 4, 4), True)
    monkeypatch.setattr(table, "DIRECT_SPLIT_MACS", 1)  # one chunk per thread
    monkeypatch.setattr(backend, "threads", 3)
    split = [backend.fused_conv2d(xpad, w, b, (1, 1), (1, 1), 1, (4, 4))]
    split += backend.fused_conv2d_backward(xpad, w, g, (1, 1, 1, 1), (5, 2, 4, 4), True)
    np.testing.assert_array_equal(split[0], whole[0])  # per sample: the same sums
    np.testing.assert_array_equal(split[1], whole[1])
    for a, b in zip(split[2:], whole[2:], strict=True):  # summed over chunks: to rounding
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_a_forward_pass_checks_only_the_kernels_it_runs(monkeypatch):
    from xnet.backends.cpu_kernels import probes
    from xnet.nn.conv import Conv2D

    monkeypatch.setattr(probes, "_verdicts", {})
    backend = get_backend("cpu")
    with build_on(backend, "float32"):
        model = Sequential(Conv2D(1, 2, 3, padding=1), Conv2D(2, 20, 2), ReLU(), MaxPool2D(2))  # 9 taps, 8 taps
        wide = Conv2D(20, 2, 2)  # 80 taps: im2col
    wide.forward(model.forward(np.ones((2, 1, 7, 7), np.float32)))
    checked = {name for name, _ in probes._verdicts}
    assert checked == {"direct_conv", "norm_relu_pool", "im2col"}  # no backward kernel, no optimizer


def test_cross_entropy_over_many_classes_is_left_to_the_reference():
    backend = get_backend("cpu")
    labels = np.array([0, 1])
    assert backend.fused_softmax_cross_entropy(np.zeros((2, 33), np.float32), labels, 0.0, 1.0) is None
    assert backend.fused_softmax_cross_entropy(np.zeros((2, 32), np.float32), labels, 0.0, 1.0) is not None
