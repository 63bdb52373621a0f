"""DataLoader.sharded: the ranks' shards of every global batch, and which last batch they train on."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.data.loader import DataLoader


def _loader(backend, n, batch=8, drop_last="single"):
    x = np.arange(n, dtype=np.float32).reshape(n, 1)
    return DataLoader(x, np.arange(n), batch, backend, shuffle=True, seed=3, drop_last=drop_last)


@pytest.mark.parametrize("n, batch, ranks", [(44, 8, 2), (56, 16, 4)])
def test_the_ranks_shards_make_up_every_global_batch(backend, n, batch, ranks):
    whole = _loader(backend, n, batch)
    shards = [whole.sharded(r, ranks) for r in range(ranks)]
    for loader in (whole, *shards):
        loader.set_epoch(2)
    batches = [[backend.to_numpy(xb)[:, 0] for xb, _ in loader] for loader in shards]
    expected = [backend.to_numpy(xb)[:, 0] for xb, _ in whole]
    last = n % batch  # 4 = 2 x 2, 8 = 4 x 2: each rank gets 2 of the last batch's samples
    assert len(expected) == n // batch + 1 and all(len(b) == len(expected) for b in batches)
    for i, batch in enumerate(expected):
        np.testing.assert_array_equal(np.concatenate([b[i] for b in batches]), batch)
    assert shards[1].batch_rows == (last // ranks, 2 * last // ranks, last)  # rows lo..hi of the last batch


@pytest.mark.parametrize(
    "n, ranks, batches",
    [(41, 1, 5), (42, 1, 6), (42, 2, 5), (44, 2, 6), (43, 2, 5), (44, 4, 5), (48, 4, 6)],
)
def test_a_last_partial_batch_is_trained_on_when_each_rank_gets_two_of_its_samples(backend, n, ranks, batches):
    # for one rank that is today's rule: a last batch of exactly one sample is left out
    loader = _loader(backend, n).sharded(0, ranks)
    assert len(loader) == batches == len(list(loader))


def test_batches_that_do_not_split_evenly_are_refused(backend):
    with pytest.raises(ValueError, match="a batch of 8 does not split into 3 equal shards"):
        _loader(backend, 40).sharded(0, 3)
    with pytest.raises(ValueError, match="rank must be below ranks=2, got 2"):
        _loader(backend, 40).sharded(2, 2)


def test_evaluation_batches_are_never_sharded(backend):
    loader = _loader(backend, 20).sharded(1, 2)
    seen = np.concatenate([backend.to_numpy(xb)[:, 0] for xb, _ in loader.eval_batches()])
    np.testing.assert_array_equal(seen, np.arange(20))


def test_evaluation_batches_of_a_rank_share_hold_its_rows_only(backend):
    loader = _loader(backend, 20)  # batches of 8: the share 3..16 comes in 8 + 5, an empty share in none
    share = [backend.to_numpy(xb)[:, 0] for xb, _ in loader.eval_batches(rows=(3, 16))]
    assert [len(b) for b in share] == [8, 5]
    np.testing.assert_array_equal(np.concatenate(share), np.arange(3, 16))
    assert list(loader.eval_batches(rows=(20, 20))) == []
    with pytest.raises(ValueError, match="0 <= lo <= hi <= 20, got \\(4, 21\\)"):
        list(loader.eval_batches(rows=(4, 21)))
