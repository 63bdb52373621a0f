"""Fused optimizer kernels (CupyBackend.adam_update and its siblings) against the Array API reference body.

Without a GPU, the kernels' CUDA C runs on the host: a fake `cupy` (fake_cupy.py) compiles
it with g++ (cuda_on_host.py), and its arrays are NumPy's, so the CupyBackend made on it owns
NumPy arrays and an optimizer finds it (backend_of). The reference runs where the optimizer is
given a bare Backend, whose fast paths are all absent (`reference` below). With floating-point
contraction off, the kernels must then give the reference's numbers bit for bit: they do the same
operations in the same order on the same T-typed scalars. On a GPU (the `backend` fixture's cupy
case) the comparison allows a tolerance, as nvcc may fuse a multiply and an add into one FMA.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from fake_cupy import needs_compiler

import xnet.backends.cuda_optim_kernels as cuda_optim_kernels
from xnet.backends import Backend, backend_of, get_backend
from xnet.backends.cpu_kernels import loader
from xnet.backends.fast_paths import NO_DECAY, OPTIMIZER_SCALARS
from xnet.nn.parameter import Parameter
from xnet.optim import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, Lion, NAdam, Optimizer, RAdam, RMSprop

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


ADAM = {"b1": 0.9, "one_minus_b1": 0.1, "b2": 0.999, "one_minus_b2": 0.001, "eps_hat": 1e-8, "step_size": 0.01,
        "wd": 0.0, "shrink": 1.0, "decay": NO_DECAY}  # fmt: skip


@pytest.fixture
def gpu(fake):
    """A CupyBackend on the fake cupy (conftest.py): it owns every NumPy array. Its log starts empty."""
    backend = get_backend("cuda")
    fake.log.update(kernels=[], launches=0, by_name=[])  # forget the Philox probe of its making
    return backend


def reference(monkeypatch) -> None:
    """From now on optimizers run their reference bodies: their backend is a bare one, with no fast path."""
    monkeypatch.setattr(Optimizer, "_find_ops", lambda self: Backend())


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


# the optimizer states that may go negative (the others are averages of squares, or Adamax's norm)
SIGNED_STATES = ("m", "velocity", "exp_avg")


def special_start(opt: Optimizer, params: list[Parameter], asarray=host_asarray, to_numpy=np.asarray) -> None:
    """Weights 0 where special_grad gives 0 or a tiny gradient (so that coupled decay keeps it), and every
    state at a mix per value k % 6: ordinary, just above the smallest normal number (becoming subnormal
    at step 1 to 4 without the flush, optim/arrays.py flush_subnormal), 0 and a NaN at k = 4."""
    for p in params:
        k = np.arange(p.data.size).reshape(p.shape) % 6
        p.data[...] = asarray(np.where(np.isin(k, (1, 2, 3, 5)), 0.0, to_numpy(p.data)), p.data.dtype)
    state = opt.state_dict()
    for per_param in state["state"]:
        for name, a in per_param.items():
            tiny = np.finfo(a.dtype).tiny
            k = np.arange(a.size).reshape(a.shape) % 6
            signs = np.where(k % 2 == 0, -1.0, 1.0) if name in SIGNED_STATES else 1.0
            ordinary = np.abs(np.cos(np.arange(a.size, dtype=np.float64))).reshape(a.shape) + 0.1
            start = np.select([k == 0, k == 1, k == 2, k == 3], [ordinary, 1.001 * tiny, 1.3 * tiny, 0.0], 2.0 * tiny)
            start = start * signs
            start.flat[4] = np.nan
            per_param[name] = start.astype(a.dtype)
    opt.load_state_dict(state)


def special_grad(shape: tuple[int, ...], dtype, step: int, rng: np.random.Generator) -> np.ndarray:
    """Per value k % 6: ordinary, 0 (k = 1, 2, 5: the state only decays), a gradient whose square is
    subnormal (k = 3), and a NaN at step 2 in value 4."""
    k = np.arange(int(np.prod(shape))).reshape(shape) % 6
    g = np.where(np.isin(k, (1, 2, 5)), 0.0, rng.normal(size=shape))
    g = np.where(k == 3, 0.1 * np.sqrt(np.finfo(dtype).tiny), g)
    if step == 2 and g.size > 4:
        g.flat[4] = np.nan
    return g


def run_steps(
    cls, opts, params, asarray=host_asarray, to_numpy=np.asarray, steps: int = STEPS, special: bool = False
) -> list[np.ndarray]:
    """Parameters, gradients and optimizer state (as NumPy arrays) after `steps` updates on fixed gradients;
    special: from special_start's values, on special_grad's gradients (NaN, zeros, subnormal results)."""
    opts = dict(opts)
    group = {"params": params, "decay_all": opts.pop("decay_all", False)}  # a param-group key
    opt = cls([group], **{"lr": 0.01, **opts})
    if special:
        special_start(opt, params, asarray, to_numpy)
    rng = np.random.default_rng(1)
    for step in range(steps):
        for p in params:
            if special:
                g = special_grad(p.shape, p.grad.dtype, step, rng)
            else:
                g = rng.normal(size=p.shape)
                g.flat[0] = 0.0  # a zero gradient: the state and eps alone decide the step
            p.grad[...] = asarray(g, p.grad.dtype)  # in place: the gradients may be views of a flat buffer
        opt.lr = 0.1 / (1 + step) if cls is SGD else 0.01 * (1 + step)  # a schedule changes lr every step
        opt.step()
    state = [a for per_param in opt.state_dict()["state"] for a in per_param.values()]
    return [to_numpy(p.data) for p in params] + [to_numpy(p.grad) for p in params] + state


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal values, NaN where NaN, and zeros of the same sign."""
    nan = np.isnan(a)
    return np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a) & ~nan, np.signbit(b) & ~nan)


def subnormals(a: np.ndarray) -> np.ndarray:
    """The values of `a` that are subnormal (nonzero, below the smallest normal number of its dtype)."""
    return a[(a != 0) & (np.abs(a) < np.finfo(a.dtype).tiny)]


def assert_flushed_like_the_reference(cls, got: list[np.ndarray], want: list[np.ndarray], n_params: int) -> None:
    """Same bits (the signs of zeros included), and no subnormal left in a state that decays."""
    for a, b in zip(got, want, strict=True):
        assert same_bits(a, b), (a, b)
    if cls is not Adagrad:  # its sum only grows: not flushed
        for state in got[2 * n_params :]:
            assert subnormals(state).size == 0, state


# -- (1) each kernel, run on the host, gives the reference's numbers ---------------------------------


@needs_compiler
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_fused_kernel_equals_the_reference_bit_for_bit(gpu, fake, monkeypatch, case, dtype):
    cls, opts = case
    got = run_steps(cls, opts, make_params(dtype=dtype))
    launches = fake.log["launches"]
    reference(monkeypatch)
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
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_fused_kernel_flushes_decaying_state_to_zero_as_the_reference_does(gpu, fake, monkeypatch, case, dtype):
    # states just above the smallest normal number, zero gradients, NaN and gradients whose square is subnormal
    cls, opts = case
    with np.errstate(all="ignore"):
        got = run_steps(cls, opts, make_params(dtype=dtype), special=True)
        assert fake.log["launches"] > STEPS  # the kernel did the steps
        reference(monkeypatch)
        want = run_steps(cls, opts, make_params(dtype=dtype), special=True)
    assert_flushed_like_the_reference(cls, got, want, n_params=2)


@needs_compiler
@pytest.mark.parametrize("cls", [Adam, SGD])
def test_a_parameter_outside_a_flat_buffer_gets_its_own_launch(gpu, fake, monkeypatch, cls):
    # one parameter in a group: no flat buffer, the kernel runs on the parameter's own arrays
    opts = {"momentum": 0.9} if cls is SGD else {}
    got = run_steps(cls, opts, make_params()[:1])
    assert fake.log["launches"] == STEPS + 1  # and the first use's trial
    reference(monkeypatch)
    want = run_steps(cls, opts, make_params()[:1])
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@needs_compiler
def test_a_kernel_rounding_in_another_order_is_caught(gpu, fake, monkeypatch):
    # the comparison can fail: (step_size * m) / d is the same number in exact arithmetic, not in float32
    kernel = dict(cuda_optim_kernels.OPTIMIZER_KERNELS["adam"])
    reordered = kernel["operation"].replace("d = m / d;\n            d *= step_size;", "d = (step_size * m) / d;")
    assert reordered != kernel["operation"]
    monkeypatch.setitem(cuda_optim_kernels.OPTIMIZER_KERNELS, "adam", {**kernel, "operation": reordered})
    got = run_steps(Adam, {}, make_params())
    reference(monkeypatch)
    want = run_steps(Adam, {}, make_params())
    assert not np.array_equal(got[0], want[0])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)  # close: only exactness tells them apart


@needs_compiler
def test_a_kernel_that_does_not_compile_warns_once_and_the_reference_runs(gpu, fake, monkeypatch):
    broken = {**cuda_optim_kernels.OPTIMIZER_KERNELS["sgd_momentum"], "operation": "this is not C;"}
    monkeypatch.setitem(cuda_optim_kernels.OPTIMIZER_KERNELS, "sgd_momentum", broken)
    with pytest.warns(RuntimeWarning, match=r"CUDA sgd_momentum kernel \(float32\) failed \(CalledProcessError"):
        got = run_steps(SGD, {"momentum": 0.9}, make_params())
    assert fake.log["launches"] == 1  # the trial, which failed compiling: not tried again at later steps
    reference(monkeypatch)
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
def test_arrays_a_kernel_cannot_take_get_no_kernel(gpu, fake, why, make):
    given = make()
    assert gpu.adam_update(*given, **ADAM) is False, why
    assert fake.log["kernels"] == []  # nothing compiled either
    assert all(np.all(a == 1) for a in given)  # nor changed


def test_contiguous_float_arrays_of_a_device_library_get_a_kernel(gpu, fake):
    for dtype in ("float32", "float64"):
        assert gpu.adam_update(*arrays(dtype), **ADAM) is True
        assert gpu.sgd_update(*arrays(dtype, shape=(), n=2), lr=0.1, wd=0.0, decay=NO_DECAY) is True  # 0-d too
    assert fake.log["by_name"].count("xnet_adam") == 4  # per dtype: the first use's trial and the update


def test_strict_arrays_take_the_reference_and_numpy_the_compiled_kernel(backend):
    # the backend an optimizer finds for these arrays: array-api-strict has no fused kernel, NumPy
    # the compiled CPU one (where Numba runs), CuPy the CUDA one
    a = [backend.zeros((3, 2), "float32") for _ in range(4)]
    ops = backend_of(a[0])
    assert ops is backend or backend.name == "numpy"  # any NumPy backend will do: they share the kernels
    compiled = backend.name == "numpy" and loader.kernels() is not None
    assert ops.adam_update(*a, **ADAM) == (backend.name == "cupy" or compiled)


# optimizers whose only kernel is the compiled CPU one, and how many arrays (param, grad, *state) each takes
CPU_ONLY = {Adadelta: 4, Adamax: 4, NAdam: 4, RAdam: 4, Lion: 3}


def cpu_only_update(ops, cls, asarray=host_asarray) -> tuple[bool, list]:
    """ops.<name>_update on float32 arrays of ones (scalars 0.5, no decay): its answer, and the arrays after it."""
    given = [asarray(np.ones((3, 2)), "float32") for _ in range(CPU_ONLY[cls])]
    names = OPTIMIZER_SCALARS[cls.name]
    scalars = {n: NO_DECAY if n == "decay" else True if n == "rectified" else 0.5 for n in names}
    return getattr(ops, f"{cls.name}_update")(*given, **scalars), given


@pytest.mark.parametrize("cls", list(CPU_ONLY), ids=lambda c: c.__name__)
def test_a_cpu_only_kernel_is_absent_on_strict_and_cupy_and_taken_on_numpy(backend, cls):
    ops = backend_of(backend.zeros((3, 2), "float32"))
    done, given = cpu_only_update(ops, cls, backend.asarray)
    assert done is (backend.name == "numpy" and loader.kernels() is not None)
    if not done:  # absent: nothing changed, and the optimizer runs its reference body
        assert all(np.all(backend.to_numpy(x) == 1) for x in given)


@pytest.mark.parametrize("cls", list(CPU_ONLY), ids=lambda c: c.__name__)
def test_a_cpu_only_optimizer_runs_its_reference_on_the_cupy_backend(gpu, fake, monkeypatch, cls):
    done, given = cpu_only_update(gpu, cls)
    assert done is False and all(np.all(x == 1) for x in given)
    params = make_params()
    assert backend_of(params[0].data) is gpu  # the optimizer's backend: the (fake) CUDA one, not NumPy's
    got = run_steps(cls, {"weight_decay": 0.1}, params)
    assert fake.log["kernels"] == [] and fake.log["launches"] == 0  # nothing compiled, nothing launched
    reference(monkeypatch)
    want = run_steps(cls, {"weight_decay": 0.1}, make_params())
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_the_first_use_verdict_is_kept_per_backend(install, monkeypatch):
    # a kernel that does not compile warns once for each backend that tries it, and only once
    from fake_cupy import make_fake_cupy

    fake = install(make_fake_cupy(count=2))
    broken = {**cuda_optim_kernels.OPTIMIZER_KERNELS["sgd"], "operation": "this is not C;"}
    monkeypatch.setitem(cuda_optim_kernels.OPTIMIZER_KERNELS, "sgd", broken)
    first, second = get_backend("cuda:0"), get_backend("cuda:1")
    for gpu in (first, second):
        with pytest.warns(RuntimeWarning, match="CUDA sgd kernel"):
            assert gpu.sgd_update(*arrays(n=2), lr=0.1, wd=0.0, decay=NO_DECAY) is False
        launches = fake.log["launches"]
        assert gpu.sgd_update(*arrays(n=2), lr=0.1, wd=0.0, decay=NO_DECAY) is False  # no warning, no trial
        assert fake.log["launches"] == launches


@needs_compiler
@pytest.mark.parametrize(
    ("why", "dtype", "layout"),
    [("float16", "float16", "C"), ("mixed dtypes", "mixed", "C"), ("non-contiguous", "float32", "F")],
)
def test_an_optimizer_falls_back_to_the_reference_on_arrays_no_kernel_takes(
    gpu, fake, monkeypatch, why, dtype, layout
):
    def one_param() -> list[Parameter]:
        w = np.random.default_rng(0).normal(size=(7, 5)).astype("float32" if dtype == "mixed" else dtype)
        p = Parameter(np.asfortranarray(w) if layout == "F" else w, "weight", regularize=True)
        p.grad = np.zeros(p.shape, "float64" if dtype == "mixed" else dtype, order=layout)
        return [p]

    got = run_steps(Adam, {"weight_decay": 0.1, "eps": 1e-3}, one_param())
    assert fake.log["launches"] == 0, why
    reference(monkeypatch)
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
    reference(monkeypatch)
    want = run_steps(cls, opts, make_params(backend.asarray, dtype), backend.asarray, backend.to_numpy)
    rtol, atol = (1e-5, 1e-6) if dtype == "float32" else (1e-12, 1e-14)
    for g, w in zip(got, want, strict=True):
        if backend.name == "cupy":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(g, w)


def test_backend_of_finds_the_backend_that_made_the_arrays(backend):
    made = get_backend(backend.name if backend.name != "numpy" else "cpu")
    a = made.zeros((2,), "float32")
    assert backend_of(a) is made  # the newest live backend that owns them
    assert isinstance(backend_of(np.zeros(2)), Backend)  # NumPy arrays always have one
    assert type(backend_of([1.0])) is Backend  # anything else: a bare backend, every fast path absent


def test_an_optimizer_follows_its_parameters_to_another_backend():
    from xnet.nn.dense import Dense
    from xnet.nn.module import build_on

    with build_on("cpu", "float32"):
        model = Dense(3, 2)
    opt = Adam(model.parameters())
    assert opt.ops.name == "numpy"
    strict = get_backend("strict")
    model.to(strict)
    for p in model.parameters():
        p.grad[...] = strict.asarray(np.ones(p.shape), "float32")
    opt.step()  # the flat buffer is rebuilt on the new arrays, and the backend found again
    assert opt.ops is strict
    assert float(strict.to_numpy(model.weight.data).max()) != 0.0


def test_both_kernel_sets_take_the_scalars_in_the_one_order():
    # OPTIMIZER_SCALARS is the order both the CUDA in_params and the compiled CPU kernels take
    from xnet.backends.cpu_kernels import optim as cpu_optim
    from xnet.backends.fast_paths import FLAG_SCALARS, OPTIMIZER_FAST_PATHS

    for name, spec in cuda_optim_kernels.OPTIMIZER_KERNELS.items():
        assert [p.split()[-1] for p in spec["in_params"].split(",")] == list(OPTIMIZER_SCALARS[name]), name
    for name, kernel in cpu_optim.OPTIMIZERS.items():
        args = list(inspect.signature(kernel.py_func).parameters)
        assert args[: len(OPTIMIZER_SCALARS[name])] == list(OPTIMIZER_SCALARS[name]), name
        ints = {i for i, n in enumerate(OPTIMIZER_SCALARS[name]) if n in ("decay", *FLAG_SCALARS)}
        assert cpu_optim.INT_SCALARS[name] == ints, name
        assert f"{name}_update" in OPTIMIZER_FAST_PATHS and hasattr(Backend, f"{name}_update"), name
