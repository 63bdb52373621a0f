"""Data-parallel evaluation without MPI: the ranks' shares of an evaluation set, and ranks run as threads
adding up their shares' sums give one process's result (the MPI runs are in test_mpi_train.py)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from xnet.losses import CrossEntropy
from xnet.nn import BatchNorm1D, Dense, ReLU, Sequential, build_on
from xnet.optim import L2, SGD
from xnet.parallel.data_parallel import DataParallel, eval_share
from xnet.train import Trainer


@pytest.mark.parametrize("n, ranks", [(10, 2), (11, 2), (7, 3), (1, 2), (2, 3), (5, 8)])
def test_the_shares_are_contiguous_disjoint_cover_the_set_and_differ_by_one_at_most(n, ranks):
    shares = [eval_share(n, r, ranks) for r in range(ranks)]
    assert shares[0][0] == 0 and shares[-1][1] == n
    # each share starts where the one before ends
    assert all(a[1] == b[0] for a, b in zip(shares[:-1], shares[1:], strict=True))
    sizes = [hi - lo for lo, hi in shares]
    assert min(sizes) >= 0 and max(sizes) - min(sizes) <= 1
    assert sizes.count(0) == max(ranks - n, 0)  # fewer samples than ranks: the rest evaluate none


class ThreadWorld:
    """Rank `rank` of `size` threads of this process: allreduce sums the ranks' buffers in rank order."""

    def __init__(self, rank: int, size: int, slots: list, barrier: threading.Barrier):
        self.rank, self.size, self.is_root = rank, size, rank == 0
        self.slots, self.barrier, self.calls = slots, barrier, 0

    def allreduce(self, buf: np.ndarray, what: str) -> None:
        self.calls += 1
        self.slots[self.rank] = buf.copy()
        self.barrier.wait()
        total = sum(self.slots[1:], self.slots[0].copy())
        self.barrier.wait()  # every rank has read the slots before any writes its next buffer
        buf[...] = total


def _trainer(backend, reduction, parallel=None) -> Trainer:
    with build_on(backend, "float64"):
        backend.rng.seed(0)
        model = Sequential(Dense(4, 8), BatchNorm1D(8), ReLU(), Dense(8, 3))
        loss = CrossEntropy(reduction=reduction)
    opt = SGD(model.parameters(), lr=0.1, regularizers=[L2(0.01)])
    return Trainer(model, loss, opt, backend=backend, parallel=parallel, reporter=None)


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return (np.eye(3, 4)[y] * 2 + rng.normal(0, 1.0, (n, 4))).astype(np.float64), y.astype(np.int64)


@pytest.mark.parametrize("n, ranks, reduction", [(37, 2, "mean"), (37, 2, "sum"), (2, 3, "sum")])
def test_ranks_evaluating_their_shares_give_one_process_evaluation(backend, n, ranks, reduction):
    one = _trainer(backend, reduction)
    one.fit(_data(64, 0), epochs=1, batch_size=16, verbose=0)  # trained weights, running statistics, penalty > 0
    test = _data(n, 1)
    expected = one.evaluate(test)
    slots, barrier = [None] * ranks, threading.Barrier(ranks, timeout=30)
    trainers, rows, results = [], [[] for _ in range(ranks)], [None] * ranks
    for rank in range(ranks):
        t = _trainer(backend, reduction, DataParallel(ThreadWorld(rank, ranks, slots, barrier)))
        t.model.load_state_dict(one.model.state_dict())
        t._batch_terms = one._batch_terms  # as fit sets it: a summed loss's penalty is per term of a batch
        t._eval_loader(test)  # as fit does before training (its one-sample check is no evaluation)
        forward = t.model.forward
        t.model.forward = lambda x, forward=forward, seen=rows[rank]: seen.append(x.shape[0]) or forward(x)
        trainers.append(t)

    def evaluate(rank: int) -> None:
        results[rank] = trainers[rank]._epoch_eval(test)

    threads = [threading.Thread(target=evaluate, args=(r,)) for r in range(ranks)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    forwarded = [sum(r) for r in rows]  # each rank forwards its share only: n samples in all, not n per rank
    assert sum(forwarded) == n and all(abs(k - n / ranks) < 1 for k in forwarded)
    assert all(t.parallel.world.calls == 1 for t in trainers)  # one all-reduce each, empty shares included
    for result in results:
        assert (result.loss, result.accuracy) == (results[0].loss, results[0].accuracy)  # every rank the same
        assert result.loss == pytest.approx(expected.loss, rel=1e-12)  # the penalty added once, not per rank
        assert result.accuracy == expected.accuracy
