"""Sequential's fused Dense -> ReLU | Sigmoid | Tanh step gives the layers' own numbers, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.backends.cpu_kernels import loader, table
from xnet.nn.activations import ReLU, Sigmoid, Tanh
from xnet.nn.dense import Dense
from xnet.nn.fused_dense import DenseActivation
from xnet.nn.module import build_on
from xnet.nn.sequential import Sequential

ACTS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


def _model(backend, dtype, act: str, bias: bool, sizes=(7, 9, 4)) -> Sequential:
    with build_on(backend, dtype):
        backend.rng.seed(5)
        model = Sequential(Dense(sizes[0], sizes[1], bias=bias), ACTS[act](), Dense(sizes[1], sizes[2]))
    rng = np.random.default_rng(1)
    for p in model.parameters():  # biases away from 0, so that they matter
        p.data = backend.asarray(rng.standard_normal(tuple(p.data.shape)), dtype)
    return model


def _run(backend, model, x, g):
    model.zero_grad()
    y = model.forward(x)
    dx = model.backward(g)
    out = [y] + ([] if dx is None else [dx]) + [p.grad for p in model.parameters()]
    return [backend.to_numpy(a).copy() for a in out]


def _compiled(backend) -> bool:
    return backend.name == "numpy" and loader.kernels() is not None


def _batch(backend, dtype, n, k, special=False):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, k)) * 2
    if special:  # values whose ReLU the float mask defines: NaN stays NaN, -inf becomes NaN
        x[0, :4] = [np.nan, np.inf, -np.inf, -0.0]
    return backend.asarray(x, dtype)


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_step_equals_the_layers_one_by_one(backend, dtype, act, bias):
    fused, plain = _model(backend, dtype, act, bias), _model(backend, dtype, act, bias)
    plain.fuse = False
    x = _batch(backend, dtype, 6, 7)
    g = backend.asarray(np.random.default_rng(3).standard_normal((6, 4)), dtype)
    got, want = _run(backend, fused, x, g), _run(backend, plain, x, g)
    step = fused._plan()[0][1]
    assert isinstance(step, DenseActivation) and step.kind == act
    assert (step._y is not None) == _compiled(backend)  # the fused kernels ran where there are any
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_relu_of_nan_and_inf_as_the_layers(backend, dtype):
    fused, plain = _model(backend, dtype, "relu", True, (5, 6, 3)), _model(backend, dtype, "relu", True, (5, 6, 3))
    plain.fuse = False
    x = _batch(backend, dtype, 4, 5, special=True)
    g = backend.asarray(np.random.default_rng(4).standard_normal((4, 3)), dtype)
    with np.errstate(invalid="ignore"):  # the reference's -inf * 0 and NaN arithmetic
        got, want = _run(backend, fused, x, g), _run(backend, plain, x, g)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)  # NaN where NaN, the same bits elsewhere


@pytest.mark.parametrize("act", ["relu", "sigmoid"])
def test_a_batch_split_over_the_threads_sums_the_bias_gradient_in_chunk_order(backend, dtype, act, monkeypatch):
    monkeypatch.setattr(table, "POLLING_SPLIT_MIN_BYTES", 256)
    monkeypatch.setattr(table, "SPLIT_MIN_BYTES", 256)
    monkeypatch.setattr(backend, "threads", 2, raising=False)
    fused, plain = _model(backend, dtype, act, True, (7, 40, 4)), _model(backend, dtype, act, True, (7, 40, 4))
    plain.fuse = False
    x = _batch(backend, dtype, 300, 7)
    g = backend.asarray(np.random.default_rng(5).standard_normal((300, 4)), dtype)
    got, want = _run(backend, fused, x, g), _run(backend, plain, x, g)
    tol = {"float32": {"rtol": 1e-5, "atol": 1e-5}, "float64": {"rtol": 1e-12, "atol": 1e-12}}[dtype]
    for a, b in zip(got, want, strict=True):  # the first bias's sums may round otherwise: chunk by chunk
        np.testing.assert_allclose(a, b, **tol)


def test_first_layer_without_input_gradient_returns_none_and_still_accumulates(backend):
    fused, plain = _model(backend, "float64", "tanh", True), _model(backend, "float64", "tanh", True)
    plain.fuse = False
    for m in (fused, plain):
        m.needs_input_grad = False
    x = _batch(backend, "float64", 5, 7)
    g = backend.asarray(np.random.default_rng(6).standard_normal((5, 4)), "float64")
    got, want = _run(backend, fused, x, g), _run(backend, plain, x, g)
    assert len(got) == len(want) == 1 + 4  # the output and four gradients: no input gradient
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_errors_name_the_layer_as_unfused(backend):
    model = _model(backend, "float64", "relu", True)
    with pytest.raises(RuntimeError, match="ReLU: backward called before forward"):
        model.layers[1].backward(backend.zeros((2, 9), "float64"))
    model.forward(_batch(backend, "float64", 3, 7))
    step = model._plan()[0][1]
    with pytest.raises(ValueError, match="ReLU"):
        step.backward(backend.zeros((2, 9), "float64"))  # not the output's shape
    with pytest.raises(ValueError, match=r"Dense\(7, 9\): expected input \(N, 7\)"):
        model.forward(_batch(backend, "float64", 3, 6))


def test_only_exact_dense_and_activation_types_fuse(backend):
    class MyReLU(ReLU):
        pass

    with build_on(backend, "float64"):
        layers = [Dense(3, 4), MyReLU(), Dense(4, 4), Sigmoid(), Dense(4, 2)]
    assert DenseActivation.at(layers, 0) is None  # a subclass may compute otherwise
    assert DenseActivation.at(layers, 2) is not None
    assert DenseActivation.at(layers, 4) is None  # no activation after it


@pytest.mark.parametrize("bias", [True, False])
def test_an_empty_batch_gives_empty_outputs_and_zero_gradients(backend, bias):
    model = _model(backend, "float32", "relu", bias)
    x = backend.asarray(np.zeros((0, 7)), "float32")
    y = model.forward(x)
    assert tuple(y.shape) == (0, 4)
    model.zero_grad()
    dx = model.backward(backend.asarray(np.zeros((0, 4)), "float32"))
    assert tuple(dx.shape) == (0, 7)
    for p in model.parameters():
        assert not backend.to_numpy(p.grad).any()


def test_a_lazy_dense_fuses_from_the_step_after_it_learns_its_size(backend):
    from xnet.nn.lazy import LazyDense

    with build_on(backend, "float64"):
        lazy = Sequential(LazyDense(9), ReLU(), Dense(9, 4))
        plain = Sequential(Dense(7, 9), ReLU(), Dense(9, 4))
    plain.fuse = False
    x = _batch(backend, "float64", 6, 7)
    g = backend.asarray(np.random.default_rng(3).standard_normal((6, 4)), "float64")
    _run(backend, lazy, x, g)  # the first forward gives the Dense its size, and runs the layers one by one
    assert lazy._steps[0][1] is lazy.layers[0]  # that forward ran the layer alone: it was lazy at planning
    for p, q in zip(lazy.parameters(), plain.parameters(), strict=True):
        q.data = backend.asarray(backend.to_numpy(p.data), "float64")
    got, want = _run(backend, lazy, x, g), _run(backend, plain, x, g)
    assert isinstance(lazy._steps[0][1], DenseActivation)  # the step just run was the fused one
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_large_sigmoid_layer_is_left_to_the_layers_chunked_passes(backend, monkeypatch):
    monkeypatch.setattr(backend, "pass_split_bytes", 1024)  # as if the batch were large
    fused, plain = _model(backend, "float64", "sigmoid", True), _model(backend, "float64", "sigmoid", True)
    plain.fuse = False
    x = _batch(backend, "float64", 40, 7)
    g = backend.asarray(np.random.default_rng(7).standard_normal((40, 4)), "float64")
    got, want = _run(backend, fused, x, g), _run(backend, plain, x, g)
    assert fused._plan()[0][1]._y is None  # the two layers ran, the Sigmoid's pass in chunks
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_kernels_for_a_batch_shape_are_asked_for_once_and_do_every_step(backend, dtype, monkeypatch):
    asked, general = [], []
    real = backend.fused_dense_activation
    monkeypatch.setattr(backend, "fused_dense_activation", lambda *a: asked.append(a[1]) or real(*a))
    for name in ("fused_bias_activation", "fused_activation_grad"):  # the route that checks every call
        monkeypatch.setattr(backend, name, (lambda f: lambda *a: general.append(1) or f(*a))(getattr(backend, name)))
    fused, plain = _model(backend, dtype, "sigmoid", True), _model(backend, dtype, "sigmoid", True)
    plain.fuse = False
    rng = np.random.default_rng(8)
    for n in (6, 6, 6, 2):  # three steps, then a shorter last batch
        x = _batch(backend, dtype, n, 7)
        g = backend.asarray(rng.standard_normal((n, 4)), dtype)
        got, want = _run(backend, fused, x, g), _run(backend, plain, x, g)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
    assert asked == [(6, 9), (2, 9)]
    # where the backend has the kernels, the per-call route never ran; elsewhere it answered absent
    assert (general == []) == _compiled(backend)


def test_a_gradient_the_kernels_do_not_take_goes_the_checked_way(backend):
    models = []
    for _ in range(2):
        with build_on(backend, "float32"):
            backend.rng.seed(5)
            models.append(Sequential(Dense(7, 9), Tanh()))  # the whole model is the fused step
    fused, plain = models
    plain.fuse = False
    x = _batch(backend, "float32", 6, 7)
    wide = backend.asarray(np.random.default_rng(9).standard_normal((6, 18)), "float32")
    g = wide[:, ::2]  # the output's shape, not C-contiguous
    got, want = _run(backend, fused, x, g), _run(backend, plain, x, g)
    assert (fused._plan()[0][1]._kernels is not None) == _compiled(backend)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_steps_follow_the_layer_list_and_fuse_setting(backend):
    model = _model(backend, "float64", "relu", True)
    x = _batch(backend, "float64", 4, 7)
    model.forward(x)
    assert isinstance(model._plan()[0][1], DenseActivation) and model._plan()[0][1].kind == "relu"
    with build_on(backend, "float64"):
        model.layers[1] = Tanh()  # replaced in place: the next forward plans again
    y = model.forward(x)
    step = model._plan()[0][1]
    assert isinstance(step, DenseActivation) and step.kind == "tanh"
    plain = _model(backend, "float64", "tanh", True)
    plain.fuse = False
    np.testing.assert_array_equal(backend.to_numpy(y), backend.to_numpy(plain.forward(x)))
    model.fuse = False
    model.forward(x)
    assert model._plan()[0][1] is model.layers[0]  # every layer on its own


@pytest.mark.parametrize("act", ["relu", "sigmoid"])
def test_gradients_accumulate_over_backwards_without_zero_grad_as_the_layers(backend, dtype, act):
    fused, plain = _model(backend, dtype, act, True), _model(backend, dtype, act, True)
    plain.fuse = False
    rng = np.random.default_rng(10)
    for m in (fused, plain):
        m.zero_grad()
    for step in range(3):  # the first backward overwrites the cleared gradients, the next two add to them
        x = _batch(backend, dtype, 5, 7) * (step + 1)
        g = backend.asarray(rng.standard_normal((5, 4)), dtype)
        for m in (fused, plain):
            m.forward(x)
            m.backward(g)
    for p, q in zip(fused.parameters(), plain.parameters(), strict=True):
        np.testing.assert_array_equal(backend.to_numpy(p.grad), backend.to_numpy(q.grad))


def test_a_bias_gradient_the_kernel_cannot_write_into_gets_the_sums_copied(backend, dtype):
    fused, plain = _model(backend, dtype, "sigmoid", True), _model(backend, dtype, "sigmoid", True)
    plain.fuse = False
    spare = backend.asarray(np.zeros(18), dtype)
    fused.layers[0].bias.grad = spare[::2]  # a strided gradient array (user code may set one)
    x = _batch(backend, dtype, 6, 7)
    g = backend.asarray(np.random.default_rng(11).standard_normal((6, 4)), dtype)
    got, want = _run(backend, fused, x, g), _run(backend, plain, x, g)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(backend.to_numpy(spare[::2]), want[-3])  # written into the given array
