"""Random streams: the same numbers on every backend, independent consumers, shards, state, seeds."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from xnet.backends import get_backend, host_stream
from xnet.backends.philox import numpy_words
from xnet.backends.rng import GENERATOR, Stream, stream_id

DRAWS = [
    ("uniform", ((4, 5), -2.0, 3.0, "float32")),
    ("uniform", ((33,), 0.0, 1.0, "float64")),
    ("bernoulli", ((6, 7), 0.3, "float32")),
    ("integers", (-3, 4, (5, 2))),
    ("permutation", (37,)),
    ("normal", ((3, 5), 1.0, 2.0, "float64")),
    ("normal", ((9,), 0.0, 1.0, "float32")),
]


@pytest.mark.parametrize(("draw", "args"), DRAWS)
def test_every_backend_draws_the_numbers_numpy_draws(backend, draw, args):
    cpu = get_backend("cpu", seed=11)
    backend.rng.seed(11)
    for _ in range(2):  # the second draw starts where the first left off
        want = getattr(cpu.rng.stream("s"), draw)(*args)
        got = backend.to_numpy(getattr(backend.rng.stream("s"), draw)(*args))
        assert got.dtype == want.dtype and got.shape == want.shape
        if draw == "normal":  # log, cos and sin may differ in the last bit between libraries
            np.testing.assert_allclose(got, want, rtol=1e-6 if want.dtype == np.float32 else 1e-13, atol=1e-12)
        else:
            np.testing.assert_array_equal(got, want)


def test_draws_follow_the_documented_formulas():
    """The transforms of rng.py's docstring, recomputed here from the raw words."""
    key = (5, stream_id("s"))
    w = numpy_words(key, 0, 0, 8)
    s = Stream(get_backend("cpu"), 5, "s")
    np.testing.assert_array_equal(s.uniform((8,)), (w >> np.uint64(11)) * 2.0**-53)
    w = numpy_words(key, 0, 8, 8)
    np.testing.assert_array_equal(
        s.uniform((8,), dtype="float32"), ((w >> np.uint64(40)) * 2.0**-24).astype(np.float32)
    )
    w = numpy_words(key, 0, 16, 8)
    np.testing.assert_array_equal(s.bernoulli((8,), 0.5), ((w >> np.uint64(11)) < 2**52).astype(np.float32))
    w = numpy_words(key, 0, 24, 8)
    np.testing.assert_array_equal(
        s.integers(2, 9, (8,)), ((w >> np.uint64(32)) * 7 >> np.uint64(32)).astype(np.int64) + 2
    )
    w = numpy_words(key, 0, 32, 2)
    r = math.sqrt(-2 * math.log(1 - int(w[0] >> np.uint64(11)) * 2.0**-53))
    t = 2 * math.pi * int(w[1] >> np.uint64(11)) * 2.0**-53
    np.testing.assert_allclose(s.normal((2,)), [r * math.cos(t), r * math.sin(t)], rtol=1e-15)
    w = int(numpy_words(key, 0, 36, 1)[0])  # float32: one word per pair, two 24-bit halves
    r = math.sqrt(-2 * math.log(1 - (w >> 40) * 2.0**-24))
    t = 2 * math.pi * ((w >> 8) & 0xFFFFFF) * 2.0**-24
    np.testing.assert_allclose(s.normal((2,), dtype="float32"), [r * math.cos(t), r * math.sin(t)], rtol=1e-6)


def test_draws_have_the_right_distribution():
    s = host_stream(0, "stats")
    u = s.uniform((200_000,), -1.0, 3.0)
    assert u.min() >= -1 and u.max() < 3 and abs(u.mean() - 1) < 0.01 and abs(u.var() - 16 / 12) < 0.01
    z = s.normal((200_000,), 1.0, 2.0)
    assert abs(z.mean() - 1) < 0.02 and abs(z.std() - 2) < 0.02
    assert abs(np.mean(np.abs(z - 1) < 2) - 0.6827) < 0.005  # one sigma
    z = s.normal((200_000,), 0.0, 1.0, dtype="float32")
    assert z.dtype == np.float32 and abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs(np.mean(np.abs(z) < 1.96) - 0.95) < 0.003
    assert abs(s.bernoulli((200_000,), 0.25).mean() - 0.25) < 0.005
    counts = np.bincount(s.integers(0, 5, (100_000,)), minlength=5)
    assert counts.min() > 19_000 and counts.max() < 21_000
    first = np.array([s.permutation(5)[0] for _ in range(5000)])
    assert np.all(np.abs(np.bincount(first, minlength=5) - 1000) < 120)
    assert sorted(s.permutation(1000).tolist()) == list(range(1000))


def test_bernoulli_edges_and_bad_arguments():
    s = host_stream(1, "edges")
    assert s.bernoulli((100,), 0.0).sum() == 0 and s.bernoulli((100,), 1.0).sum() == 100
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        s.bernoulli((3,), 1.5)
    with pytest.raises(ValueError, match="high - low"):
        s.integers(3, 3, (2,))
    with pytest.raises(ValueError, match="float32 or float64"):
        s.uniform((2,), dtype="int64")


def test_streams_do_not_disturb_each_other():
    a, b = get_backend("cpu", seed=4), get_backend("cpu", seed=4)
    a.rng.stream("dropout").bernoulli((100,), 0.5)  # only `a` draws dropout masks
    np.testing.assert_array_equal(a.rng.stream("augment").uniform((5,)), b.rng.stream("augment").uniform((5,)))
    np.testing.assert_array_equal(a.rng.stream("init").normal((5,)), b.rng.stream("init").normal((5,)))


def test_seed_and_epoch_restart_every_stream():
    b = get_backend("cpu")
    b.rng.seed(3, epoch=2)
    first = b.rng.stream("x").uniform((4,))
    b.rng.stream("x").uniform((4,))
    b.rng.seed(3, epoch=2)
    np.testing.assert_array_equal(b.rng.stream("x").uniform((4,)), first)
    b.rng.seed(3, epoch=3)
    assert not np.array_equal(b.rng.stream("x").uniform((4,)), first)


@pytest.mark.parametrize(("draw", "args"), [d for d in DRAWS if d[0] != "permutation"])
@pytest.mark.parametrize(("lo", "hi"), [(0, 3), (3, 7), (5, 12), (11, 12)])
def test_a_shard_draws_its_rows_of_the_whole_draw(backend, draw, args, lo, hi):
    total = 12
    shape_of = {"integers": 2}.get(draw, 0)

    def with_rows(rows):
        a = list(args)
        a[shape_of] = (rows, *tuple(a[shape_of])[1:]) if len(a[shape_of]) > 1 else (rows,)
        return a

    cpu = get_backend("cpu", seed=2)
    whole = [getattr(cpu.rng.stream("d"), draw)(*with_rows(total)) for _ in range(2)]
    backend.rng.seed(2)
    with backend.rng.batch_shard(lo, hi, total):
        parts = [backend.to_numpy(getattr(backend.rng.stream("d"), draw)(*with_rows(hi - lo))) for _ in range(2)]
    for part, full in zip(parts, whole, strict=True):  # the second draw: the stream advanced by the whole draw
        np.testing.assert_allclose(part, full[lo:hi], rtol=1e-6, atol=0)
    assert backend.rng.stream("d").position == cpu.rng.stream("d").position


def test_a_shard_leaves_other_shapes_and_permutations_whole():
    b = get_backend("cpu", seed=1)
    with b.rng.batch_shard(2, 4, 8):
        p = b.rng.stream("p").permutation(6)
        u = b.rng.stream("u").uniform((5,))  # 5 rows, not the shard's 2: not a per-sample draw
    ref = get_backend("cpu", seed=1)
    np.testing.assert_array_equal(p, ref.rng.stream("p").permutation(6))
    np.testing.assert_array_equal(u, ref.rng.stream("u").uniform((5,)))
    with pytest.raises(ValueError, match="lo < hi"), b.rng.batch_shard(3, 3, 8):
        pass


def test_state_is_a_few_integers_and_resumes_on_another_backend(backend):
    cpu = get_backend("cpu", seed=9)
    cpu.rng.seed(9, epoch=4)
    cpu.rng.stream("dropout").bernoulli((10, 3), 0.5)
    cpu.rng.stream("augment").integers(0, 3, (7,))
    state = json.loads(json.dumps(cpu.rng.state_dict()))  # as a checkpoint keeps it
    assert state == {"generator": GENERATOR, "seed": 9, "epoch": 4, "positions": {"augment": 8, "dropout": 32}}
    backend.rng.load_state_dict(state)
    np.testing.assert_array_equal(
        backend.to_numpy(backend.rng.stream("dropout").bernoulli((6,), 0.5)),
        cpu.rng.stream("dropout").bernoulli((6,), 0.5),
    )


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ([1, 2], "expected a dict"),
        ({"generator": "mt19937"}, "generator must be"),
        ({"generator": GENERATOR, "seed": -1, "epoch": 0, "positions": {}}, "random state: seed must be"),
        ({"generator": GENERATOR, "seed": 2**63, "epoch": 0, "positions": {}}, "random state: seed must be"),
        ({"generator": GENERATOR, "seed": 1, "epoch": 1.5, "positions": {}}, "random state: epoch must be"),
        ({"generator": GENERATOR, "seed": 1, "epoch": 0}, "positions must be a dict"),
        ({"generator": GENERATOR, "seed": 1, "epoch": 0, "positions": {"dropout": -4}}, r"positions\['dropout'\]"),
        ({"generator": GENERATOR, "seed": 1, "epoch": 0, "positions": {"dropout": "4"}}, r"positions\['dropout'\]"),
    ],
)
def test_a_malformed_state_names_the_field_and_changes_nothing(state, message):
    b = get_backend("cpu", seed=3)
    before = b.rng.state_dict()
    with pytest.raises(ValueError, match=message):
        b.rng.load_state_dict(state)
    assert b.rng.state_dict() == before


@pytest.mark.parametrize("seed", [-1, 2**63, 1.0, True, "3", None])
def test_bad_seeds_are_refused(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*63\)"):
        get_backend("cpu", seed=seed)


def test_largest_seed_works():
    b = get_backend("cpu", seed=2**63 - 1)
    assert b.rng.uniform((3,)).shape == (3,)
