"""A short training through get_backend("cuda") on the fake cupy, against the same training on NumPy.

The kernel tests check each CUDA kernel alone; this one checks the CupyBackend's wiring as a GPU run
would use it: Philox draws for the initialisation, shuffle, augmentation and dropout, the fused
dropout and softmax cross-entropy kernels, the fused Adam kernel, and the whole-batch layer paths
that `launch_bound` selects (conv_wide, batch norm, pooling codes). The fake's kernels are xnet's
CUDA C compiled with g++ and its arrays are NumPy's, so every random number must equal NumPy's bit
for bit and what is computed from them may differ only by the rounding of other summation orders.

An optimizer finds the backend of its parameters (backend_of: the newest live backend that owns
them). The fake's arrays are NumPy's, which a NumPy backend owns too, so for the fake run only the
NumPy backends disown them, after the NumPy reference has run with the production check in place.
"""

from __future__ import annotations

import warnings

import numpy as np
from cnn_run import SEED, cnn_run, record_epoch
from fake_cupy import needs_compiler

from xnet.backends import get_backend
from xnet.backends.numpy_backend import NumpyBackend
from xnet.nn.conv_wide import WideConv
from xnet.nn.fused import NormReLUPool

pytestmark = needs_compiler

STEPS = 3
# Measured after 3 steps: the initial weights, augmented batches (the fake's xp is NumPy, so the
# augmentation's cos and sin are NumPy's too) and the first loss equal NumPy's bit for bit; the later
# losses, weights and running statistics differ by at most 2.4e-7 (float32, 1-2 ulp) and 1.1e-16
# (float64) absolute, at most 6.4e-6 and 1.7e-14 relative, those on entries of 1e-2 and 1e-3 (the
# whole-batch layer paths sum in another order). The bounds hold every entry with 20x to spare or more.
TOLERANCE = {"float32": {"rtol": 1e-5, "atol": 2e-6}, "float64": {"rtol": 1e-12, "atol": 1e-14}}
FUSED = ("xnet_dropout", "xnet_softmax_ce_labels", "xnet_adam")


def train(spec: str, dtype: str, launches: list[str] | None = None) -> dict[str, list]:
    """One epoch of STEPS batches of cnn_run's CNN; what each step drew and computed (and under
    "launched", the kernels each step launched, read from the list `launches` that the fake appends to)."""
    backend = get_backend(spec, seed=SEED)
    run = cnn_run(backend, dtype, n=8 * STEPS, batch=8)
    to_np = backend.to_numpy
    seen: dict[str, list] = {"init": [to_np(p.data).copy() for p in run.model.parameters()]}
    seen.update(order=[], batch=[], mask=[], loss=[], launched=[])
    record_epoch(run, 1, seen, [] if launches is None else launches)
    seen["weights"] = [to_np(p.data).copy() for p in run.model.parameters()]
    seen["running"] = [to_np(b).copy() for _, b in run.model.named_buffers()]
    return seen


def count_calls(monkeypatch, cls: type, name: str) -> list[int]:
    """A one-item list counting calls of cls.name from now on."""
    calls, method = [0], getattr(cls, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return method(*args, **kwargs)

    monkeypatch.setattr(cls, name, counted)
    return calls


def test_a_short_training_on_the_fake_gpu_matches_numpy(fake, dtype, monkeypatch):
    wide = [count_calls(monkeypatch, WideConv, "forward"), count_calls(monkeypatch, NormReLUPool, "_forward_wide")]
    ref = train("cpu", dtype)
    assert fake.log["launches"] == 0  # the reference ran no kernel of the fake
    assert [c[0] for c in wide] == [0, 0]  # nor the whole-batch layer paths
    monkeypatch.setattr(NumpyBackend, "owns", lambda self, a: False)  # the fake's arrays are CuPy's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = train("cuda", dtype, fake.log["by_name"])
    fallbacks = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not fallbacks, fallbacks

    assert [c[0] for c in wide] == [2 * STEPS, 2 * STEPS]  # two conv + BN + ReLU + pool blocks a step
    # every step launched the fused kernels: a fallback to the reference would launch none of them
    # (the first step also runs each kernel's first-use probe; Adam's flat group is one launch a step)
    assert len(got["launched"]) == STEPS
    first, *later = got["launched"]
    assert all(name in first for name in FUSED), first
    for names in later:
        assert [names.count(name) for name in FUSED] == [1, 1, 1], names

    for key in ("init", "order", "mask", "batch"):  # the random numbers and what the loader made of them: exactly
        assert len(got[key]) == len(ref[key]) > 0
        for g, r in zip(got[key], ref[key], strict=True):
            np.testing.assert_array_equal(g, r, err_msg=key)
    assert len(got["mask"]) == STEPS and 0 < np.mean(got["mask"][0] == 0) < 0.6  # dropout did drop
    for key in ("loss", "weights", "running"):
        assert len(got[key]) == len(ref[key]) > 0, key
        for g, r in zip(got[key], ref[key], strict=True):
            np.testing.assert_allclose(g, r, err_msg=key, **TOLERANCE[dtype])
