"""A last training batch of one sample is skipped (batch norm cannot train on it); evaluation keeps every sample."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.data import DataLoader
from xnet.losses import CrossEntropy
from xnet.nn import BatchNorm1D, Dense, ReLU, Sequential, build_on
from xnet.optim import SGD
from xnet.train import Trainer


def data(n: int) -> tuple[np.ndarray, np.ndarray]:
    """x[i] = (i, i, i) so batches can be traced back to their samples; three classes."""
    x = np.repeat(np.arange(n, dtype=np.float32)[:, None], 3, axis=1)
    return x, np.arange(n) % 3


def sizes(loader) -> list[int]:
    return [int(xb.shape[0]) for xb, _ in loader]


@pytest.mark.parametrize(
    "n,batch_size,expected",
    [
        (57, 7, [7] * 8),  # 57 = 7 * 8 + 1: the lone last sample is left out
        (56, 7, [7] * 8),
        (59, 7, [7] * 8 + [3]),  # a last batch of 2 or more is kept
        (8, 7, [7]),
        (1, 128, [1]),  # the only batch is never dropped
        (1, 1, [1]),
        (5, 1, [1] * 5),  # batches of one are full batches, not a remainder
    ],
)
def test_drop_last_single_drops_only_a_last_batch_of_one(backend, n, batch_size, expected):
    loader = DataLoader(*data(n), batch_size, backend, drop_last="single")
    assert len(loader) == len(expected)
    assert sizes(loader) == expected
    assert sum(int(xb.shape[0]) for xb, _ in loader.eval_batches()) == n  # evaluation sees every sample


def test_drop_last_single_still_trains_on_every_sample_across_epochs(backend):
    loader = DataLoader(*data(57), 7, backend, drop_last="single", seed=0)
    left_out = set()
    for _ in range(6):
        seen = np.concatenate([backend.to_numpy(xb)[:, 0] for xb, _ in loader]).astype(int)
        assert len(seen) == 56 and len(set(seen.tolist())) == 56
        left_out |= set(range(57)) - set(seen.tolist())
    assert len(left_out) > 1  # reshuffled each epoch: not the same sample every time


@pytest.mark.parametrize("bad", ["yes", "Single", 1.0, None])
def test_drop_last_rejects_other_values(backend, bad):
    with pytest.raises(ValueError, match="drop_last must be True, False or 'single'"):
        DataLoader(*data(10), 4, backend, drop_last=bad)


def bn_trainer(backend) -> Trainer:
    with build_on(backend, "float32"):
        backend.rng.seed(0)
        model = Sequential(Dense(3, 8), BatchNorm1D(8), ReLU(), Dense(8, 3))
        loss = CrossEntropy()
    return Trainer(model, loss, SGD(model.parameters(), lr=0.01), None, backend, seed=0, meta={"num_classes": 3})


def test_batch_norm_trains_when_the_last_batch_would_hold_one_sample(backend):
    # 57 samples in batches of 7: before the fix the 9th batch, of one sample, failed in BatchNorm1D
    x, y = data(57)
    x = x / 57
    t = bn_trainer(backend)
    history = t.fit((x, y), epochs=2, test=(x, y), batch_size=7)
    assert len(history) == 2 and t.global_step == 16  # 8 steps an epoch: what a schedule must count
    assert np.isfinite(history[-1]["train_loss"])
    result = t.evaluate((x, y))
    assert int(result.confusion.sum()) == 57  # evaluation covers the lone sample too


def test_a_given_loader_with_drop_last_false_is_not_changed(backend):
    x, y = data(57)
    loader = DataLoader(x / 57, y, 7, backend, seed=0)
    t = bn_trainer(backend)
    t.fit(loader, epochs=1)
    assert t.global_step == 8
    assert loader.drop_last is False and len(loader) == 9  # the caller's loader keeps its own setting
    assert int(t.evaluate(loader).confusion.sum()) == 57  # evaluating a training loader: every sample, in order


@pytest.mark.parametrize(
    "n,batch_size,why", [(1, 128, "the training data holds 1 sample"), (10, 1, "the batch size is 1")]
)
def test_batch_norm_with_only_one_sample_batches_is_a_clear_error(backend, n, batch_size, why):
    t = bn_trainer(backend)
    x, y = data(n)
    with pytest.raises(ValueError, match="needs at least 2 samples per training batch") as e:
        t.fit((x, y), epochs=1, batch_size=batch_size)
    assert why in str(e.value) and t.global_step == 0


def test_the_layer_still_refuses_one_sample_in_training(backend):
    t = bn_trainer(backend)
    bn = t.model.layers[1]
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn.forward(backend.asarray(np.ones((1, 8), np.float32), "float32"))
