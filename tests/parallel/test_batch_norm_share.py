"""DataParallel.check_batch_norm: per-rank batch norm on a share of one sample is refused before training."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.nn import BatchNorm1D, BatchNorm2D, Conv2D, Dense, Flatten, Sequential, build_on
from xnet.parallel.data_parallel import DataParallel


class World:
    """Rank 0 of `size`, without MPI (the check makes no collective)."""

    def __init__(self, size: int):
        self.rank, self.size, self.is_root = 0, size, True


def _forwarded(backend, model, shape):
    """`model` after one forward of a sample shaped `shape` (what tells batch norm its input's shape)."""
    model.eval()
    model.forward(backend.asarray(np.zeros((1, *shape)), "float32"))
    return model


@pytest.mark.parametrize(
    "layers, shape, batch, ranks, refused",
    [
        ("dense", (4,), 2, 2, True),  # BatchNorm1D: 1 value per feature on each rank
        ("dense", (4,), 3, 3, True),
        ("dense", (4,), 4, 2, False),
        ("conv", (1, 1, 1), 2, 2, True),  # BatchNorm2D after a 1x1 map: 1 value per channel
        ("conv", (1, 2, 2), 2, 2, False),  # 4 pixels per channel are enough
    ],
)
def test_a_share_of_one_sample_is_refused_where_batch_norm_would_see_one_value(backend, layers, shape, batch,
                                                                                 ranks, refused):  # fmt: skip
    with build_on(backend, "float32"):
        backend.rng.seed(0)
        if layers == "dense":
            model = Sequential(Dense(4, 3), BatchNorm1D(3))
        else:
            model = Sequential(Conv2D(1, 2, 1), BatchNorm2D(2), Flatten())
    _forwarded(backend, model, shape)
    DataParallel(World(ranks), sync_batch_norm=True).check_batch_norm(model, batch)  # global statistics: fine
    if not refused:
        DataParallel(World(ranks)).check_batch_norm(model, batch)
        return
    with pytest.raises(ValueError) as e:
        DataParallel(World(ranks)).check_batch_norm(model, batch)
    assert str(e.value).startswith(f"--batch-size {batch} on {ranks} ranks gives each rank 1 sample per step")
    assert str(e.value).endswith(f"pass --sync-batch-norm, or a --batch-size of at least {2 * ranks}")
