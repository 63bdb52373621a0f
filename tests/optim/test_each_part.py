"""Large NumPy parameters are updated in row blocks over the CPU threads, with the same result."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.backends import cpu_threads
from xnet.backends.cpu_kernels import loader
from xnet.nn.parameter import Parameter
from xnet.optim import Adagrad, Adam, AdamW, RMSprop, arrays

CASES = [
    (Adam, {}),
    (Adam, {"weight_decay": 0.1}),
    (AdamW, {"weight_decay": 0.1}),
    (RMSprop, {"weight_decay": 0.05}),
    (Adagrad, {}),
]


def run(cls, kwargs, split: bool, monkeypatch) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Weights and gradients after three steps of cls on a (37, 5) weight and a (5,) bias."""
    monkeypatch.setattr(arrays, "SPLIT_MIN_VALUES", 1 if split else 10**9)
    monkeypatch.setattr(loader, "kernels", lambda: None)  # the Array API bodies, not the compiled kernels
    splits: list[int] = []
    run_chunks = cpu_threads.run_chunks
    monkeypatch.setattr(cpu_threads, "run_chunks", lambda fn, count: splits.append(count) or run_chunks(fn, count))
    rng = np.random.default_rng(0)
    w = Parameter(rng.standard_normal((37, 5)).astype(np.float32), "weight")
    b = Parameter(rng.standard_normal(5).astype(np.float32), "bias", regularize=False)
    opt = cls([w, b], lr=0.01, **kwargs)
    for _ in range(3):
        w.grad[...] = rng.standard_normal(w.shape)
        b.grad[...] = rng.standard_normal(b.shape)
        opt.step()
    # every update pass (the flat buffer, or its weight and bias slices with weight decay) in 3 row blocks
    assert (set(splits) == {3} and len(splits) >= 3) if split else splits == []
    return [w.data, b.data], [w.grad, b.grad]


@pytest.mark.parametrize(("cls", "kwargs"), CASES, ids=lambda c: getattr(c, "__name__", str(c)))
def test_split_update_equals_the_whole_array_update(cls, kwargs, monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 3)
    parts, part_grads = run(cls, kwargs, True, monkeypatch)
    whole, whole_grads = run(cls, kwargs, False, monkeypatch)
    # elementwise updates: every value is computed the same way whichever block holds it
    for a, b in zip(parts + part_grads, whole + whole_grads, strict=True):
        np.testing.assert_array_equal(a, b)


def test_each_part_hands_row_blocks_to_the_update(monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 3)
    monkeypatch.setattr(arrays, "SPLIT_MIN_VALUES", 10)
    seen: list[tuple[int, ...]] = []

    def update(w: np.ndarray, g: np.ndarray, scale: float) -> None:
        seen.append(w.shape)
        w -= scale * g

    w, g = np.zeros((10, 4)), np.ones((10, 4))
    arrays.each_part(update, (w, g), 0.5)
    assert sorted(seen) == [(3, 4), (3, 4), (4, 4)]  # three blocks of rows, written in place
    np.testing.assert_array_equal(w, -0.5)
    seen.clear()
    arrays.each_part(update, (np.zeros((2, 4)), np.ones((2, 4))), 0.5)  # under the size: whole
    assert seen == [(2, 4)]


def test_each_part_leaves_other_arrays_whole(backend, monkeypatch):
    monkeypatch.setattr(cpu_threads, "_threads", 2)
    monkeypatch.setattr(arrays, "SPLIT_MIN_VALUES", 1)
    seen: list[tuple[int, ...]] = []
    w = backend.asarray(np.zeros((6, 2)), "float32")
    arrays.each_part(lambda a: seen.append(tuple(a.shape)), (w,))
    # only NumPy arrays are split: a GPU runs one kernel over the whole array
    assert seen == ([(3, 2), (3, 2)] if backend.name == "numpy" else [(6, 2)])
