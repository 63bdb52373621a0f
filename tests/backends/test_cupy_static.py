"""The CuPy backend without a GPU: the fake `cupy` (fake_cupy.py) checks what cupy_backend.py asks of it."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_cupy import make_fake_cupy, needs_compiler

import xnet.backends.cuda_nn_kernels as cuda_nn_kernels
import xnet.backends.cuda_optim_kernels as cuda_optim_kernels
import xnet.backends.cuda_philox as cuda_philox
import xnet.backends.cupy_backend as cupy_backend
import xnet.backends.kernel_check as kernel_check
from xnet.backends import BackendUnavailable, available_backends, get_backend

pytestmark = needs_compiler  # every fake GPU draws with the compiled kernel


def test_rng_state_round_trip_continues_the_stream(fake):
    b = get_backend("cuda", seed=0)
    b.rng.seed(7)
    b.rng.normal((3,))
    state = json.loads(json.dumps(b.rng.state_dict()))  # as a checkpoint header keeps it
    first = b.rng.normal((4,))
    b.rng.uniform((2,))
    b.rng.load_state_dict(state)
    np.testing.assert_array_equal(b.rng.normal((4,)), first)


def test_draws_equal_the_numpy_backends_with_one_launch_each(fake):
    gpu, cpu = get_backend("cuda", seed=3), get_backend("cpu", seed=3)
    launches = fake.log["launches"]
    for name, args in (
        ("normal", ((5, 3), 1.0, 2.0, "float32")),
        ("uniform", ((7,), -1.0, 1.0, "float64")),
        ("bernoulli", ((4, 9), 0.3)),
        ("permutation", (11,)),
        ("integers", (-2, 3, (2, 2))),
    ):
        got, want = getattr(gpu.rng, name)(*args), getattr(cpu.rng, name)(*args)
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert fake.log["launches"] == launches + 5  # the words of a draw: one kernel launch
    assert fake.log["kernels"] == ["xnet_philox_words"]  # compiled once


def test_reseeding_repeats_and_each_draw_is_new(fake):
    b = get_backend("cuda")
    b.rng.seed(3, 1)
    a1, a2 = b.rng.normal((6,)), b.rng.normal((6,))
    b.rng.seed(3, 1)
    np.testing.assert_array_equal(b.rng.normal((6,)), a1)
    np.testing.assert_array_equal(b.rng.normal((6,)), a2)
    assert not np.array_equal(a1, a2)
    b.rng.seed(3, 2)
    assert not np.array_equal(b.rng.normal((6,)), a1)


def test_a_cpu_rng_state_continues_the_same_stream_on_the_gpu(fake):
    cpu = get_backend("cpu", seed=5)
    cpu.rng.stream("dropout").bernoulli((3, 4), 0.5)
    state = json.loads(json.dumps(cpu.rng.state_dict()))  # a CPU run's checkpoint resumed with --device cuda
    gpu = get_backend("cuda")
    gpu.rng.load_state_dict(state)
    np.testing.assert_array_equal(
        gpu.rng.stream("dropout").bernoulli((5, 4), 0.5), cpu.rng.stream("dropout").bernoulli((5, 4), 0.5)
    )


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("this is not C", "failed (CalledProcessError"),
        (cuda_philox.PHILOX_SOURCE.replace("case 1: return c1;", "case 1: return c0;"), "drew other bits"),
    ],
)
def test_a_kernel_that_fails_or_draws_wrong_bits_falls_back_to_the_reference(fake, monkeypatch, source, problem):
    monkeypatch.setattr(cuda_philox, "PHILOX_SOURCE", source)
    with pytest.warns(RuntimeWarning, match=problem.replace("(", r"\(")):
        b = get_backend("cuda", seed=1)
    np.testing.assert_array_equal(b.rng.uniform((9,)), get_backend("cpu", seed=1).rng.uniform((9,)))


def test_missing_cuda_library_is_one_clear_line(install):
    error = RuntimeError("CuPy failed to load libnvrtc.so.13: OSError: cannot open shared object file\ndetails")
    install(make_fake_cupy(broken=error))
    with pytest.raises(BackendUnavailable) as e:
        get_backend("cuda")
    message = str(e.value)
    assert "\n" not in message and "libnvrtc.so.13" in message and "[ctk]" in message
    assert get_backend("auto").name == "numpy"
    assert not {s.spec: s for s in available_backends()}["cuda"].available


@pytest.mark.parametrize(
    ("count", "spec", "expected"),
    [
        (0, "cuda", "no CUDA GPU is visible"),
        (RuntimeError("cudaErrorNoDevice"), "cuda", "no CUDA GPU is usable: cudaErrorNoDevice"),
        (1, "cuda:1", r"cuda:1 asked for, but 1 GPU\(s\) are visible"),
    ],
)
def test_no_usable_gpu_is_backend_unavailable(install, count, spec, expected):
    install(make_fake_cupy(count=count))
    with pytest.raises(BackendUnavailable, match=expected):
        get_backend(spec)


def test_the_chosen_gpu_is_made_current(install):
    # array-api-compat ignores device= for CuPy, so xp.zeros(..., device=...) lands on the current GPU
    fake = install(make_fake_cupy(count=2))
    b = get_backend("cuda:1")
    assert fake.log["current"] == 1 and b.device_name == "cuda:1"
    entered = fake.log["entered"]
    assert b.to_numpy(b.asarray([1, 2], "float32")).dtype == np.float32
    assert fake.log["entered"] == entered + 1  # host data is copied inside `with device:`
    assert b.gpu_name() == "Fake GPU"


def test_memory_pool_peak_is_what_the_pool_holds_after_a_reset(fake):
    b = get_backend("cuda")
    pool = fake.get_default_memory_pool()
    pool.used, pool.cached = 300, 700  # arrays alive, and blocks an earlier workload freed
    assert b.memory_pool_bytes() == 1000
    b.memory_pool_reset()
    assert b.memory_pool_bytes() == 300  # the cached blocks went back to the device, live arrays stay
    pool.cached = 200  # a workload allocated and freed: the pool keeps the blocks, so the peak shows
    assert b.memory_pool_bytes() == 500
    cpu = get_backend("cpu")
    cpu.memory_pool_reset()
    assert cpu.memory_pool_bytes() is None  # no pool on the CPU: the report leaves the column empty


# CuPy names cupy_backend.py may use, each checked against CuPy 13/14 (docs.cupy.dev reference and
# cupy/random/_generator.py, cupy/cuda/__init__.py, cupy_backends/cuda/libs/curand.pyx)
VERIFIED = {
    "cupy.ElementwiseKernel",
    "cupy.arange",
    "cupy.asarray",
    "cupy.asnumpy",
    "cupy.cuda.Device",
    "cupy.cuda.runtime.getDeviceCount",
    "cupy.cuda.runtime.getDeviceProperties",
    "cupy.empty",
    "cupy.from_dlpack",  # since CuPy 10: any __dlpack__ producer, zero-copy on the same GPU
    "cupy.get_default_memory_pool",  # a cupy.cuda.MemoryPool: free_all_blocks(), total_bytes()
    "cupy.ndarray",  # the array class, with .flags.c_contiguous
    "cupy.zeros",
}


def _dotted(node: ast.AST) -> str | None:
    """'cupy.a.b' for an attribute chain rooted at `cupy` or `self._cp`, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
        if isinstance(node, ast.Attribute) and node.attr == "_cp" and isinstance(node.value, ast.Name):
            return ".".join(["cupy", *reversed(parts)]) if node.value.id == "self" else None
    return ".".join(["cupy", *reversed(parts)]) if isinstance(node, ast.Name) and node.id == "cupy" else None


@pytest.mark.parametrize("module", [cupy_backend, cuda_philox, cuda_optim_kernels, cuda_nn_kernels, kernel_check])
def test_cupy_backend_uses_only_verified_cupy_names(module):
    tree = ast.parse(Path(module.__file__).read_text())
    chains = {_dotted(n) for n in ast.walk(tree) if isinstance(n, ast.Attribute)} - {None}
    # keep the longest chain of each expression (cupy.cuda.runtime.getDeviceCount, not cupy.cuda)
    used = {c for c in chains if not any(o.startswith(c + ".") for o in chains)}
    assert used, "the scan found no CuPy names: _dotted no longer matches the module's style"
    assert used <= VERIFIED, f"unverified CuPy API used: {sorted(used - VERIFIED)}"


def test_a_state_from_before_the_philox_streams_resumes_reproducibly():
    # a GPU run's checkpoint written by an older xnet (cuRAND's seed and draw count): its stream cannot
    # continue, but the new one is fixed by it, on any backend
    old_gpu_state = {"seed": [7, 1], "draws": 12}
    a, b = get_backend("cpu", seed=0), get_backend("strict", seed=1)
    a.rng.load_state_dict(old_gpu_state)
    b.rng.load_state_dict(old_gpu_state)
    np.testing.assert_array_equal(a.rng.uniform((5,)), b.to_numpy(b.rng.uniform((5,))))
    other = get_backend("cpu", seed=0)
    other.rng.load_state_dict({"seed": [7, 1], "draws": 13})  # another position: another stream
    a.rng.load_state_dict(old_gpu_state)
    assert not np.array_equal(other.rng.uniform((5,)), a.rng.uniform((5,)))


def test_out_of_gpu_memory_while_training_is_one_line_naming_batch_and_memory(fake, monkeypatch, tmp_path):
    sys.path.insert(0, str(Path(__file__).parent.parent / "cli"))
    from clirun import one_line_error, xnet

    from xnet.train import Trainer

    class OutOfMemoryError(MemoryError):  # cupy/cuda/memory.pyx: a MemoryError, with this message
        pass

    def fit(self, *args, **kwargs):
        raise OutOfMemoryError("Out of memory allocating 1,073,741,824 bytes (allocated so far: 2,048 bytes).")

    monkeypatch.setattr(Trainer, "fit", fit)
    run = ("--dataset", "sine", "--loss", "mse", "--hidden", "8", "--epochs", "1", "--batch-size", "64")
    line = one_line_error(xnet("train", *run, "--device", "cuda", "--out", tmp_path / "run"))
    assert "out of memory while training with batch size 64 on cuda:0 (Fake GPU, 16.0 GiB)" in line
    assert "Out of memory allocating 1,073,741,824 bytes" in line and "--batch-size" in line
    assert not (tmp_path / "run").exists()
