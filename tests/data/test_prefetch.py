"""Batches.prefetch: the next batch gathered in the background is the batch plain iteration serves."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from xnet.backends import cpu_threads
from xnet.data import Augment, DataLoader, Pixels
from xnet.data.batches import Batches
from xnet.data.prepare import fit_normalization

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
from test_trainer import blobs, make, params  # noqa: E402

N = 53


@pytest.fixture(autouse=True)
def every_job_in_the_background(monkeypatch):
    """Two threads, no size floor, polling on: on NumPy every prefetch really runs on the worker thread."""
    monkeypatch.setattr(cpu_threads, "_threads", 2)
    monkeypatch.setattr(cpu_threads, "BACKGROUND_MIN_BYTES", 0)
    monkeypatch.setattr(cpu_threads, "polling", lambda: True)


def loaders(backend, kind: str, **kw) -> DataLoader:
    raw = np.random.default_rng(5).integers(0, 256, size=(N, 1, 6, 5), dtype=np.uint8)
    x = Pixels(raw, fit_normalization("standard", raw)) if kind == "pixels" else raw.astype(np.float32) / 7
    return DataLoader(x, np.arange(N) % 10, 8, backend, seed=4, **kw)


def served(backend, loader: DataLoader, prefetch: bool) -> list[np.ndarray]:
    """Two epochs of batches (x, y, and the loader's batch_rows when each was served and after prefetch)."""
    backend.rng.seed(3)  # the augment stream
    out = []
    for epoch in range(2):
        loader.set_epoch(epoch)
        batches = iter(loader)
        for xb, yb in batches:
            out += [backend.to_numpy(xb), backend.to_numpy(yb), np.array(loader.batch_rows)]
            if prefetch:
                batches.prefetch()
            out.append(np.array(loader.batch_rows))  # still this batch's rows while its step runs
    return out


@pytest.mark.parametrize("kind", ["floats", "pixels"])
@pytest.mark.parametrize("augment", [False, True], ids=["plain", "augment"])
@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "stored"])
def test_prefetched_batches_are_the_batches_served_without(backend, kind, augment, shuffle):
    kw = {"augment": Augment(max_shift=1, max_rotate_degrees=15) if augment else None, "shuffle": shuffle}
    want = served(backend, loaders(backend, kind, **kw), prefetch=False)
    got = served(backend, loaders(backend, kind, **kw), prefetch=True)
    assert len(got) == len(want) == 2 * 7 * 4
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("rank", [0, 1])
def test_a_ranks_prefetched_shards_and_their_rows_are_those_served_without(backend, rank):
    whole = DataLoader(np.arange(44, dtype=np.float32).reshape(44, 1), np.arange(44), 8, backend, seed=3)
    want = served(backend, whole.sharded(rank, 2), prefetch=False)
    got = served(backend, whole.sharded(rank, 2), prefetch=True)
    assert len(got) == len(want) > 0
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_prefetching_twice_or_after_the_last_batch_changes_nothing(backend):
    loader = loaders(backend, "floats")
    batches = iter(loader)
    seen = []
    for _, yb in batches:
        batches.prefetch()
        batches.prefetch()  # the next batch is already on its way: not a second one
        seen.append(backend.to_numpy(yb))
    batches.prefetch()
    assert sum(len(y) for y in seen) == N
    loader.set_epoch(0)
    np.testing.assert_array_equal(np.concatenate(seen), np.concatenate([backend.to_numpy(y) for _, y in loader]))


def test_a_loop_left_with_a_batch_on_its_way_leaves_the_workers_free(monkeypatch):
    monkeypatch.setattr(cpu_threads, "PARALLEL_MIN_MACS", 1)
    loader = loaders("numpy", "floats")
    batches = iter(loader)
    next(batches)
    batches.prefetch()
    assert cpu_threads._background is not None  # the gather went to the worker
    del batches
    a = np.ones((64, 300), np.float32)
    # the next split waits for the abandoned gather, then has both threads
    np.testing.assert_array_equal(cpu_threads.matmul(a, a.T), np.full((64, 64), 300, np.float32))
    assert cpu_threads._background is None and not cpu_threads._busy.locked()


def test_training_with_the_next_batch_gathered_in_the_background_learns_the_same_weights(backend, monkeypatch):
    x, y = blobs()
    plain = make(backend, dropout=0.2)
    monkeypatch.setattr(Batches, "prefetch", lambda self: None)
    plain.fit((x, y), epochs=2, batch_size=32)
    monkeypatch.undo()
    monkeypatch.setattr(cpu_threads, "_threads", 2)
    monkeypatch.setattr(cpu_threads, "BACKGROUND_MIN_BYTES", 0)
    monkeypatch.setattr(cpu_threads, "polling", lambda: True)
    ran_on = []  # the thread each background gather ran on
    real = cpu_threads.background

    def spied(fn, nbytes):
        return real(lambda: (ran_on.append(threading.current_thread().name), fn())[1], nbytes)

    monkeypatch.setattr(cpu_threads, "background", spied)
    fetched = make(backend, dropout=0.2)
    fetched.fit((x, y), epochs=2, batch_size=32)
    if backend.name == "numpy":  # every batch but each epoch's first was gathered on the worker
        assert ran_on == ["xnet-cpu"] * (2 * (240 // 32))
    for a, b in zip(params(fetched), params(plain), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("floor", [10**9, 0], ids=["small batches", "large enough"])
def test_batches_too_small_for_the_background_are_never_handed_to_it(backend, monkeypatch, floor):
    monkeypatch.setattr(cpu_threads, "BACKGROUND_MIN_BYTES", floor)
    handed = []
    real = backend.background
    monkeypatch.setattr(backend, "background", lambda fn, nbytes: handed.append(nbytes) or real(fn, nbytes))
    want = served(backend, loaders(backend, "floats"), prefetch=False)
    got = served(backend, loaders(backend, "floats"), prefetch=True)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    # NumPy hands every next batch over once it may run one at all; elsewhere the backend never would
    expect_handed = backend.name == "numpy" and floor == 0
    assert (len(handed) == 2 * 6) == expect_handed and (not handed) == (not expect_handed)
