"""Fused optimizer kernels (fast_paths.kernel_for) against the Array API reference body.

Without a GPU, the kernels' CUDA C runs on the host: a fake `cupy` (fake_cupy.py) compiles
it with g++ (cuda_on_host.py), and `fast_paths._device_library` is pointed at that fake so NumPy
arrays stand in for CuPy arrays. With floating-point contraction off, the kernels must then give
the reference's numbers bit for bit: they do the same operations in the same order on the same
T-typed scalars. On a GPU (the `backend` fixture's cupy case) the comparison allows a tolerance,
as nvcc may fuse a multiply and an add into one FMA.
"""

from __future__ import annotations

import numpy as np
import pytest
from fake_cupy import needs_compiler

import xnet.backends.cuda_optim_kernels as cuda_optim_kernels
import xnet.backends.fast_paths as fast_paths
from xnet.backends.cpu_kernels import loader
from xnet.backends.fast_paths import kernel_for
from xnet.nn.parameter import Parameter
from xnet.optim import SGD, Adagrad, Adam, AdamW, RMSprop

# (optimizer, options): every branch of every kernel (decay modes, momentum, Nesterov, bias correction)
CASES = [
    (Adam, {}),
    (Adam, {"weight_decay": 0.1}),  # coupled, weights only: the group splits into two launches
    (Adam, {"weight_decay": 0.1, "decay_all": True}),
    (Adam, {"bias_correction": False, "eps": 1e-3}),
    (AdamW, {}),  # decoupled decay 0.01
    (AdamW, {"weight_decay": 0.2, "decay_all": True, "bias_correction": False}),
    (SGD, {"lr": 0.1}),
    (SGD, {"lr": 0.1, "weight_decay": 0.05}),
    (SGD, {"lr": 0.1, "momentum": 0.9}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    (SGD, {"lr": 0.1, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05, "decay_all": True}),
    (RMSprop, {}),
    (RMSprop, {"weight_decay": 0.05, "rho": 0.7}),
    (Adagrad, {}),
    (Adagrad, {"weight_decay": 0.05, "initial_accumulator_value": 0.1}),
]
STEPS = 5


def case_id(case: tuple) -> str:
    cls, opts = case
    return cls.__name__ + "".join(f"-{k}={v}" for k, v in opts.items())


@pytest.fixture
def fake(fake, monkeypatch):
    """The fake cupy (conftest.py), and every array taken as one of its arrays."""
    monkeypatch.setattr(fast_paths, "_device_library", lambda a: fake)
    return fake


def host_asarray(a, dtype):
    return np.asarray(a, dtype=dtype)


def make_params(asarray=host_asarray, dtype="float32") -> list[Parameter]:
    """A weight (7, 5) that weight decay touches and a bias (5,) that it does not, with some exact zeros."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(7, 5))
    w[0, :2] = 0.0
    b = rng.normal(size=(5,))
    weight = Parameter(asarray(w, dtype), "weight", regularize=True)
    return [weight, Parameter(asarray(b, dtype), "bias", regularize=False)]


def run_steps(cls, opts, params, asarray=host_asarray, to_numpy=np.asarray, steps: int = STEPS) -> list[np.ndarray]:
    """Parameters, gradients and optimizer state (as NumPy arrays) after `steps` updates on fixed gradients."""
    opts = dict(opts)
    group = {"params": params, "decay_all": opts.pop("decay_all", False)}  # a param-group key
    opt = cls([group], **{"lr": 0.01, **opts})
    rng = np.random.default_rng(1)
    for step in range(steps):
        for p in params:
            g = rng.normal(size=p.shape)
            g.flat[0] = 0.0  # a zero gradient: the state and eps alone decide the step
            p.grad[...] = asarray(g, p.grad.dtype)  # in place: the gradients may be views of a flat buffer
        opt.lr = 0.1 / (1 + step) if cls is SGD else 0.01 * (1 + step)  # a schedule changes lr every step
        opt.step()
    state = [a for per_param in opt.state_dict()["state"] for a in per_param.values()]
    return [to_numpy(p.data) for p in params] + [to_numpy(p.grad) for p in params] + state


# -- (1) each kernel, run on the host, gives the reference's numbers ---------------------------------


@needs_compiler
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_fused_kernel_equals_the_reference_bit_for_bit(fake, monkeypatch, case, dtype):
    cls, opts = case
    got = run_steps(cls, opts, make_params(dtype=dtype))
    launches = fake.log["launches"]
    monkeypatch.setattr(fast_paths, "_device_library", lambda a: None)  # the reference body
    want = run_steps(cls, opts, make_params(dtype=dtype))
    assert fake.log["launches"] == launches  # the reference launched nothing
    # one launch per group and step, two when weight decay treats the weights apart from the bias,
    # and the trial launch of the kernel's first use
    split = bool(opts.get("weight_decay", 0.01 if cls is AdamW else 0)) and not opts.get("decay_all")
    assert len(fake.log["kernels"]) == 1
    assert launches == STEPS * (2 if split else 1) + 1
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(g, w)


@needs_compiler
@pytest.mark.parametrize("cls", [Adam, SGD])
def test_a_parameter_outside_a_flat_buffer_gets_its_own_launch(fake, monkeypatch, cls):
    # one parameter in a group: no flat buffer, the kernel runs on the parameter's own arrays
    opts = {"momentum": 0.9} if cls is SGD else {}
    got = run_steps(cls, opts, make_params()[:1])
    assert fake.log["launches"] == STEPS + 1  # and the first use's trial
    monkeypatch.setattr(fast_paths, "_device_library", lambda a: None)
    want = run_steps(cls, opts, make_params()[:1])
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@needs_compiler
def test_a_kernel_rounding_in_another_order_is_caught(fake, monkeypatch):
    # the comparison can fail: (step_size * m) / d is the same number in exact arithmetic, not in float32
    kernel = dict(cuda_optim_kernels.OPTIMIZER_KERNELS["adam"])
    reordered = kernel["operation"].replace("d = m / d;\n            d *= step_size;", "d = (step_size * m) / d;")
    assert reordered != kernel["operation"]
    monkeypatch.setitem(cuda_optim_kernels.OPTIMIZER_KERNELS, "adam", {**kernel, "operation": reordered})
    got = run_steps(Adam, {}, make_params())
    monkeypatch.setattr(fast_paths, "_device_library", lambda a: None)
    want = run_steps(Adam, {}, make_params())
    assert not np.array_equal(got[0], want[0])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)  # close: only exactness tells them apart


@needs_compiler
def test_a_kernel_that_does_not_compile_warns_once_and_the_reference_runs(fake, monkeypatch):
    broken = {**cuda_optim_kernels.OPTIMIZER_KERNELS["sgd_momentum"], "operation": "this is not C;"}
    monkeypatch.setitem(cuda_optim_kernels.OPTIMIZER_KERNELS, "sgd_momentum", broken)
    with pytest.warns(RuntimeWarning, match=r"CUDA sgd_momentum kernel \(float32\) failed \(CalledProcessError"):
        got = run_steps(SGD, {"momentum": 0.9}, make_params())
    assert fake.log["launches"] == 1  # the trial, which failed compiling: not tried again at later steps
    monkeypatch.setattr(fast_paths, "_device_library", lambda a: None)
    want = run_steps(SGD, {"momentum": 0.9}, make_params())
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


# -- (2) what a kernel cannot take falls back to the reference body ----------------------------------


def arrays(dtype="float32", shape=(6, 4), n=4) -> list[np.ndarray]:
    return [np.ones(shape, dtype=dtype) for _ in range(n)]


@pytest.mark.parametrize(
    ("why", "make"),
    [
        ("float16", lambda: arrays("float16")),
        ("integer", lambda: arrays("int32")),
        ("mixed dtypes", lambda: arrays()[:3] + arrays("float64", n=1)),
        ("one non-contiguous", lambda: arrays()[:3] + [np.ones((4, 6), "float32").T]),
        ("strided slices", lambda: [a[:, ::2] for a in arrays()]),
        ("shapes differ", lambda: arrays()[:3] + arrays(shape=(4, 6), n=1)),
    ],
)
def test_arrays_a_kernel_cannot_take_get_no_kernel(fake, why, make):
    assert kernel_for("adam", *make()) is None, why
    assert fake.log["kernels"] == []  # nothing compiled either


def test_contiguous_float_arrays_of_a_device_library_get_a_kernel(fake):
    for dtype in ("float32", "float64"):
        assert callable(kernel_for("adam", *arrays(dtype)))
        assert callable(kernel_for("sgd", *arrays(dtype, shape=(), n=2)))  # a 0-d parameter too


def test_strict_arrays_take_the_reference_and_numpy_the_compiled_kernel(backend):
    # the real _device_library: array-api-strict has no fused kernel, NumPy the compiled CPU one
    a = [backend.zeros((3, 2), "float32") for _ in range(4)]
    compiled = backend.name == "numpy" and loader.kernels() is not None
    assert (kernel_for("adam", *a) is not None) == (backend.name == "cupy" or compiled)


@needs_compiler
@pytest.mark.parametrize(
    ("why", "dtype", "layout"),
    [("float16", "float16", "C"), ("mixed dtypes", "mixed", "C"), ("non-contiguous", "float32", "F")],
)
def test_an_optimizer_falls_back_to_the_reference_on_arrays_no_kernel_takes(fake, monkeypatch, why, dtype, layout):
    def one_param() -> list[Parameter]:
        w = np.random.default_rng(0).normal(size=(7, 5)).astype("float32" if dtype == "mixed" else dtype)
        p = Parameter(np.asfortranarray(w) if layout == "F" else w, "weight", regularize=True)
        p.grad = np.zeros(p.shape, "float64" if dtype == "mixed" else dtype, order=layout)
        return [p]

    got = run_steps(Adam, {"weight_decay": 0.1, "eps": 1e-3}, one_param())
    assert fake.log["launches"] == 0, why
    monkeypatch.setattr(fast_paths, "_device_library", lambda a: None)
    want = run_steps(Adam, {"weight_decay": 0.1, "eps": 1e-3}, one_param())
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


# -- (3) on each backend: the default path against the reference body --------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_default_path_matches_the_reference_on_the_device(backend, monkeypatch, case, dtype):
    """On cupy the fused kernels run; allowed: a few float32 ulps per step from FMA contraction.
    On numpy and strict no kernel runs, so both runs are the reference: equal bit for bit."""
    cls, opts = case
    got = run_steps(cls, opts, make_params(backend.asarray, dtype), backend.asarray, backend.to_numpy)
    monkeypatch.setattr(fast_paths, "_device_library", lambda a: None)
    want = run_steps(cls, opts, make_params(backend.asarray, dtype), backend.asarray, backend.to_numpy)
    rtol, atol = (1e-5, 1e-6) if dtype == "float32" else (1e-12, 1e-14)
    for g, w in zip(got, want, strict=True):
        if backend.name == "cupy":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(g, w)
