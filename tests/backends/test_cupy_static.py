"""The CuPy backend without a GPU: a NumPy stand-in for `cupy` checks what cupy_backend.py asks of it.

The stand-in implements only the CuPy API whose behaviour was checked against CuPy's source and
docs (signatures of cupy.random.RandomState, its seed check in CuPy 13.2, Device as a context
manager), so these tests catch calls CuPy would refuse before a GPU ever runs them.
"""

from __future__ import annotations

import ast
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import xnet.backends.cupy_backend as cupy_backend
from xnet.backends import BackendUnavailable, available_backends, get_backend
from xnet.backends.rng import HostRng

PHILOX = 161  # cupy.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10 (cuRAND's curandRngType_t)


def _float_only(dtype):
    # cupy/random/_generator.py _check_and_get_dtype: cuRAND draws float32 and float64 only
    dtype = np.dtype(dtype)
    if dtype.char not in ("f", "d"):
        raise TypeError("cupy.random only supports float32 and float64")
    return dtype


def make_fake_cupy(count: int = 1, broken: Exception | None = None) -> types.ModuleType:
    """A `cupy` module on NumPy: `count` GPUs; `broken` is raised by the first kernel (toolkit check)."""
    cupy = types.ModuleType("cupy")
    cupy.log = {"seeds": [], "methods": [], "draw_dtypes": [], "current": 0, "entered": 0}
    log = cupy.log

    class Device:
        def __init__(self, device=None):
            self.id = log["current"] if device is None else int(device)

        def use(self):
            log["current"] = self.id

        def synchronize(self):
            pass

        def __enter__(self):
            self._previous, log["current"] = log["current"], self.id
            log["entered"] += 1
            return self

        def __exit__(self, *args):
            log["current"] = self._previous

    class RandomState:
        # the signatures of cupy/random/_generator.py RandomState
        def __init__(self, seed=None, method=100):
            log["methods"].append(method)
            self.seed(seed)

        def seed(self, seed=None):
            # CuPy 13.2's check, which refuses a Python int below 2**63 under NumPy 2 (cupy/cupy#8392)
            seed = int(np.asarray(seed).astype(np.uint64, casting="safe"))
            log["seeds"].append(seed)
            self._rng = np.random.Generator(np.random.Philox(seed))

        def random_sample(self, size=None, dtype=float):
            if broken is not None:
                raise broken
            log["draw_dtypes"].append(np.dtype(dtype))
            return self._rng.random(size).astype(_float_only(dtype))

        def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
            log["draw_dtypes"].append(np.dtype(dtype))
            return (self._rng.standard_normal(size) * scale + loc).astype(_float_only(dtype))

        def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
            return (low + self.random_sample(size, dtype) * (high - low)).astype(dtype)

        def permutation(self, a):
            return np.argsort(self._rng.integers(0, 2**32, a, dtype=np.uint32))

        def randint(self, low, high=None, size=None, dtype=int):
            return self._rng.integers(low, high, size).astype(dtype)

    def get_device_count():
        if isinstance(count, Exception):
            raise count
        return count

    runtime = types.SimpleNamespace(
        getDeviceCount=get_device_count,
        getDeviceProperties=lambda i: {"name": b"Fake GPU", "totalGlobalMem": 2**34},
    )
    cupy.cuda = types.SimpleNamespace(
        runtime=runtime, Device=Device, curand=types.SimpleNamespace(CURAND_RNG_PSEUDO_PHILOX4_32_10=PHILOX)
    )
    cupy.random = types.SimpleNamespace(RandomState=RandomState)
    cupy.asarray = lambda a, dtype=None: np.asarray(a, dtype=dtype)
    cupy.asnumpy = np.asarray
    return cupy


@pytest.fixture
def install(monkeypatch):
    """install(fake) puts a fake `cupy` (and NumPy as array_api_compat.cupy) in sys.modules."""

    def put(fake: types.ModuleType) -> types.ModuleType:
        monkeypatch.setitem(sys.modules, "cupy", fake)
        monkeypatch.setitem(sys.modules, "array_api_compat.cupy", np)
        return fake

    return put


@pytest.fixture
def fake(install):
    return install(make_fake_cupy())


def test_rng_state_round_trip_continues_the_stream(fake):
    b = get_backend("cuda", seed=0)
    b.rng.seed(7)
    b.rng.normal((3,))
    state = json.loads(json.dumps(b.rng.state_dict()))  # as a checkpoint header keeps it
    first = b.rng.normal((4,))
    b.rng.uniform((2,))
    b.rng.load_state_dict(state)
    np.testing.assert_array_equal(b.rng.normal((4,)), first)


def test_seeds_pass_cupy_13_2_check_as_uint64(fake):
    b = get_backend("cuda", seed=3)
    for draw in (
        lambda: b.rng.normal((2,)),
        lambda: b.rng.uniform((2,), -1, 1),
        lambda: b.rng.bernoulli((4,), 0.5),
        lambda: b.rng.permutation(5),
        lambda: b.rng.integers(-2, 3, (2, 2)),
    ):
        draw()  # the fake's seed() raises TypeError for a Python int, as CuPy 13.2 under NumPy 2 did
    assert len(fake.log["seeds"]) >= 6  # the toolkit check, then one per draw
    assert set(fake.log["methods"][1:]) == {PHILOX}  # the rng's generator: Philox, cheap to reseed


def test_reseeding_repeats_and_each_draw_is_new(fake):
    b = get_backend("cuda")
    b.rng.seed((3, 1))
    a1, a2 = b.rng.normal((6,)), b.rng.normal((6,))
    b.rng.seed((3, 1))
    np.testing.assert_array_equal(b.rng.normal((6,)), a1)
    np.testing.assert_array_equal(b.rng.normal((6,)), a2)
    assert not np.array_equal(a1, a2)
    b.rng.seed((3, 2))
    assert not np.array_equal(b.rng.normal((6,)), a1)


def test_draws_come_in_the_requested_dtype(fake):
    b = get_backend("cuda")
    fake.log["draw_dtypes"].clear()
    assert b.rng.normal((3,), dtype="float32").dtype == np.float32
    assert b.rng.uniform((3,), dtype="float32").dtype == np.float32
    # drawn as float32, not as float64 and then cast (twice the memory traffic)
    assert fake.log["draw_dtypes"] == [np.dtype(np.float32)] * 2
    assert b.rng.normal((3,)).dtype == np.float64  # as HostRng when no dtype is given
    mask = b.rng.bernoulli((50,), 0.5)
    assert mask.dtype == np.float32 and set(np.unique(mask).tolist()) <= {0.0, 1.0}
    assert b.rng.integers(0, 4, (5,)).dtype == np.int64
    p = b.rng.permutation(20)
    assert p.dtype == np.int64 and sorted(p.tolist()) == list(range(20))


def test_a_host_rng_state_resumes_deterministically(fake):
    b = get_backend("cuda")
    host_state = json.loads(json.dumps(HostRng(5, lambda a, dtype: a).state_dict()))
    b.rng.load_state_dict(host_state)  # a CPU run's checkpoint resumed with --device cuda
    first = b.rng.normal((4,))
    b.rng.load_state_dict(host_state)
    np.testing.assert_array_equal(b.rng.normal((4,)), first)


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


# CuPy names cupy_backend.py may use, each checked against CuPy 13/14 (docs.cupy.dev reference and
# cupy/random/_generator.py, cupy/cuda/__init__.py, cupy_backends/cuda/libs/curand.pyx)
VERIFIED = {
    "cupy.asarray",
    "cupy.asnumpy",
    "cupy.cuda.Device",
    "cupy.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10",
    "cupy.cuda.runtime.getDeviceCount",
    "cupy.cuda.runtime.getDeviceProperties",
    "cupy.random.RandomState",
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


def test_cupy_backend_uses_only_verified_cupy_names():
    tree = ast.parse(Path(cupy_backend.__file__).read_text())
    chains = {_dotted(n) for n in ast.walk(tree) if isinstance(n, ast.Attribute)} - {None}
    # keep the longest chain of each expression (cupy.cuda.runtime.getDeviceCount, not cupy.cuda)
    used = {c for c in chains if not any(o.startswith(c + ".") for o in chains)}
    assert used, "the scan found no CuPy names: _dotted no longer matches the module's style"
    assert used <= VERIFIED, f"unverified CuPy API used: {sorted(used - VERIFIED)}"


def test_host_rng_continues_reproducibly_from_a_gpu_state():
    # a GPU run resumed on the CPU: its cuRAND stream cannot continue, but the new stream is fixed by it
    from xnet.backends.rng import HostRng

    gpu_state = {"seed": [7, 1], "draws": 12}
    a, b = HostRng(0, lambda x, dtype: x), HostRng(1, lambda x, dtype: x)
    a.load_state_dict(gpu_state)
    b.load_state_dict(gpu_state)
    assert (a.uniform((5,)) == b.uniform((5,))).all()
    other = HostRng(0, lambda x, dtype: x)
    other.load_state_dict({"seed": [7, 1], "draws": 13})  # another position: another stream
    a.load_state_dict(gpu_state)
    assert not (other.uniform((5,)) == a.uniform((5,))).all()
