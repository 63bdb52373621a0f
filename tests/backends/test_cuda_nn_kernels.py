"""The fused CUDA kernels (dropout, softmax cross-entropy) run on the host against the Array API reference.

A fake `cupy` on NumPy (fake_cupy.py, the `fake` fixture) whose ElementwiseKernel compiles the
kernels' real CUDA source with the host's C++ compiler (cuda_on_host.py) stands in for a GPU: the
CUDA backend then takes its fused paths, and each result is compared with the NumPy backend, which
runs the reference body. Nothing here runs on a GPU.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from fake_cupy import needs_compiler

import xnet.backends.cuda_nn_kernels as cuda_nn_kernels
from xnet.backends import get_backend
from xnet.losses import CrossEntropy
from xnet.nn import Dropout

pytestmark = needs_compiler
TOL = {"float32": {"rtol": 1e-5, "atol": 1e-6}, "float64": {"rtol": 1e-12, "atol": 1e-13}}


def launches_of(fake, name: str) -> int:
    return fake.log["by_name"].count(name)


# -- dropout -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1,), (7,), (5, 3), (4, 3, 2, 5), (0, 4)])
@pytest.mark.parametrize("p", [1e-12, 0.1, 0.5, 0.9, 1 - 1e-9])
def test_fused_dropout_gives_the_reference_mask_output_and_stream(fake, dtype, shape, p):
    gpu, cpu = get_backend("cuda", seed=4), get_backend("cpu", seed=4)
    for b in (gpu, cpu):
        b.rng.stream("dropout").bernoulli((3,), 0.5)  # a draw before: the layer's starts mid-stream
    fused, reference = Dropout(p).to(gpu, dtype), Dropout(p).to(cpu, dtype)
    x = np.random.default_rng(0).normal(size=shape).astype(dtype)
    x.flat[:1] = np.inf  # an inf where the mask is 0 gives NaN in the reference's x * mask: so must the kernel
    assert gpu._kernel_ok("dropout")  # its first-use check launches it too: count the layer's launches only
    before = launches_of(fake, "xnet_dropout")
    with np.errstate(invalid="ignore"):  # inf * 0
        got, want = fused(x), reference(x.copy())
    assert launches_of(fake, "xnet_dropout") == before + (1 if x.size else 0)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(fused._mask, reference._mask)
    g = np.random.default_rng(1).normal(size=shape).astype(dtype)
    np.testing.assert_array_equal(fused.backward(g), reference.backward(g))
    # the stream goes on as after the reference draw: the next draw and the saved state are the same
    assert gpu.rng.state_dict() == cpu.rng.state_dict()
    np.testing.assert_array_equal(
        gpu.rng.stream("dropout").bernoulli((2, 5), 0.3), cpu.rng.stream("dropout").bernoulli((2, 5), 0.3)
    )


@pytest.mark.parametrize("keep", [0.0, 1.0, 0.25])
def test_fused_dropout_edge_probabilities_equal_bernoulli(fake, keep):
    gpu, cpu = get_backend("cuda", seed=2), get_backend("cpu", seed=2)
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6)
    y, mask = gpu.fused_dropout(x, gpu.rng.stream("dropout"), keep, 2.0)
    want = cpu.rng.stream("dropout").bernoulli((4, 6), keep, "float32")
    want *= 2.0
    np.testing.assert_array_equal(mask, want)
    np.testing.assert_array_equal(y, x * want)
    assert gpu.rng.state_dict() == cpu.rng.state_dict()


def test_fused_dropout_in_a_batch_shard_draws_the_rows_of_the_whole_batch(fake):
    gpu, cpu = get_backend("cuda", seed=9), get_backend("cpu", seed=9)
    x = np.ones((3, 5), dtype=np.float32)
    with gpu.rng.batch_shard(2, 5, 8):
        y, mask = gpu.fused_dropout(x, gpu.rng.stream("dropout"), 0.5, 2.0)
    whole = cpu.rng.stream("dropout").bernoulli((8, 5), 0.5, "float32") * 2.0  # the single-process draw
    np.testing.assert_array_equal(mask, whole[2:5])
    assert gpu.rng.state_dict() == cpu.rng.state_dict()


def test_a_resumed_state_continues_with_the_same_masks(fake):
    gpu, cpu = get_backend("cuda", seed=1), get_backend("cpu", seed=1)
    x = np.ones((6, 4), dtype=np.float32)
    Dropout(0.5).to(gpu)(x)
    state = json.loads(json.dumps(gpu.rng.state_dict()))  # as a checkpoint keeps it
    cpu.rng.load_state_dict(state)
    np.testing.assert_array_equal(Dropout(0.5).to(gpu)(x), Dropout(0.5).to(cpu)(x))


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2],  # not contiguous
        lambda: np.arange(12, dtype=np.float16).reshape(3, 4),  # no kernel for float16
    ],
    ids=["strided", "float16"],
)
def test_dropout_falls_back_to_the_reference_for_arrays_the_kernel_does_not_take(fake, make):
    gpu, cpu = get_backend("cuda", seed=3), get_backend("cpu", seed=3)
    x = make()
    assert gpu._kernel_ok("dropout")  # count the layer's launches, not those of the first-use check
    before = launches_of(fake, "xnet_dropout")
    got, want = Dropout(0.4).to(gpu)(x), Dropout(0.4).to(cpu)(x)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == want.dtype
    assert launches_of(fake, "xnet_dropout") == before
    assert gpu.rng.state_dict() == cpu.rng.state_dict()


# -- softmax cross-entropy ---------------------------------------------------------------------------


def _targets(kind: str, N: int, K: int, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(5)
    if kind == "soft":
        t = rng.random((N, K))
        return (t / t.sum(axis=1, keepdims=True) * rng.uniform(0.5, 1.5, (N, 1))).astype(dtype)  # rows not summing to 1
    return rng.integers(0, K, N).astype(kind)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("kind", ["int64", "int32", "soft"])
def test_fused_cross_entropy_equals_the_reference(fake, dtype, reduction, smoothing, kind):
    gpu, cpu = get_backend("cuda"), get_backend("cpu")
    N, K = 33, 10
    z = (np.random.default_rng(2).normal(size=(N, K)) * 4).astype(dtype)
    z[0] = [60.0, -60.0] * (K // 2)  # large logits: the log-sum-exp keeps them finite
    t = _targets(kind, N, K, dtype)
    fused = CrossEntropy(smoothing, reduction).to(gpu, dtype)
    reference = CrossEntropy(smoothing, reduction).to(cpu, dtype)
    assert gpu._kernel_ok("softmax_cross_entropy")  # count the loss's launches, not those of the first-use check
    before = launches_of(fake, "xnet_softmax_ce_soft" if kind == "soft" else "xnet_softmax_ce_labels")
    got, want = fused(z, t), reference(z, t)
    assert launches_of(fake, "xnet_softmax_ce_soft" if kind == "soft" else "xnet_softmax_ce_labels") == before + 1
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, **TOL[dtype])
    grad = np.random.default_rng(3).normal(size=(N,)).astype(dtype) if reduction == "none" else None
    np.testing.assert_allclose(fused.backward(grad), reference.backward(grad), **TOL[dtype])


@pytest.mark.parametrize(
    "case",
    ["strided logits", "float16", "targets of another dtype", "uint8 labels", "long rows"],
)
def test_cross_entropy_falls_back_to_the_reference_for_arrays_the_kernels_do_not_take(fake, case):
    gpu, cpu = get_backend("cuda"), get_backend("cpu")
    cpu.fused_softmax_cross_entropy = lambda *args: None  # the reference body, not NumPy's compiled kernel
    rng = np.random.default_rng(0)
    dtype, K = ("float16" if case == "float16" else "float32"), (2000 if case == "long rows" else 6)
    z = rng.normal(size=(K, 8)).astype(dtype).T if case == "strided logits" else rng.normal(size=(8, K)).astype(dtype)
    t = rng.integers(0, K, 8).astype("uint8" if case == "uint8 labels" else "int64")
    if case == "targets of another dtype":
        t = np.eye(K, dtype=np.float64)[t]
    assert gpu._kernel_ok("softmax_cross_entropy")  # count the loss's launches, not those of the first-use check
    before = launches_of(fake, "xnet_softmax_ce_labels") + launches_of(fake, "xnet_softmax_ce_soft")
    got, want = CrossEntropy(0.1).to(gpu)(z, t), CrossEntropy(0.1).to(cpu)(z, t)
    np.testing.assert_array_equal(got, want)  # the same reference body on the same NumPy
    assert launches_of(fake, "xnet_softmax_ce_labels") + launches_of(fake, "xnet_softmax_ce_soft") == before


def test_cross_entropy_still_checks_labels_on_the_fused_path(fake):
    loss = CrossEntropy().to(get_backend("cuda"))
    with pytest.raises(ValueError, match=r"label 7 is outside \[0, 4\)"):
        loss(np.zeros((3, 4), np.float32), np.array([0, 7, 1]))


# -- first-use checks: a kernel that fails or computes other numbers is never used ---------------------


@pytest.mark.parametrize(
    ("kernel", "operation", "problem"),
    [
        ("DROPOUT_KERNEL", "this is not C", "failed"),
        ("DROPOUT_KERNEL", cuda_nn_kernels.DROPOUT_KERNEL["operation"].replace("first + i", "first + i + 1"),
         "gave another mask"),
        ("CE_LABELS_KERNEL", cuda_nn_kernels.CE_LABELS_KERNEL["operation"].replace("scale)", "1.0)"),
         "computed other numbers"),
    ],
)  # fmt: skip
def test_a_kernel_failing_its_first_use_check_leaves_the_reference(fake, monkeypatch, kernel, operation, problem):
    monkeypatch.setitem(getattr(cuda_nn_kernels, kernel), "operation", operation)
    gpu, cpu = get_backend("cuda", seed=6), get_backend("cpu", seed=6)
    x = np.linspace(-1, 1, 40, dtype=np.float32).reshape(8, 5)
    labels = np.arange(8) % 5
    with pytest.warns(RuntimeWarning, match=problem):
        got = Dropout(0.5).to(gpu)(x) if kernel == "DROPOUT_KERNEL" else CrossEntropy().to(gpu)(x, labels)
    want = Dropout(0.5).to(cpu)(x) if kernel == "DROPOUT_KERNEL" else CrossEntropy().to(cpu)(x, labels)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert gpu.rng.state_dict()["positions"].get("dropout") == cpu.rng.state_dict()["positions"].get("dropout")
