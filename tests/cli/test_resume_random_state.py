"""--resume and the random state a checkpoint keeps: a cross-device resume, older checkpoints, malformed states."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from clirun import one_line_error, xnet

from xnet.train import load_checkpoint
from xnet.train.checkpoint import save_checkpoint

# a constant schedule: a resume that extends a run recomputes a decaying one for the new length
RUN = ("--dataset", "sine", "--loss", "mse", "--hidden", "8,8", "--dropout", "0.2", "--batch-size", "64")
RUN = (*RUN, "--schedule", "constant", "--quiet")
# what an xnet before the Philox streams saved: NumPy's PCG64 state (CPU) and cuRAND's seed and draw count (GPU)
PCG64_STATE = {
    "bit_generator": "PCG64",
    "state": {"state": 123456789, "inc": 987654321},
    "has_uint32": 0,
    "uinteger": 0,
}
CURAND_STATE = {"seed": [0, 1], "draws": 40}


def weights(run: Path) -> list[np.ndarray]:
    model = load_checkpoint(run / "model.npz")["trainer"]["model"]
    return [model[k] for k in sorted(model)]


def set_rng_state(run: Path, rng: object) -> None:
    state = dict(load_checkpoint(run / "model.npz"))
    state["trainer"] = {**state["trainer"], "rng": rng}
    save_checkpoint(run / "model.npz", state)


def test_resumed_on_another_device_equals_uninterrupted(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    assert xnet("train", *RUN, "--epochs", "3", "--out", full).code == 0
    assert xnet("train", *RUN, "--epochs", "1", "--out", part).code == 0
    r = xnet("train", *RUN, "--epochs", "3", "--out", part, "--resume", "--device", "strict")
    assert r.code == 0, r.err
    for a, b in zip(weights(full), weights(part), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("old", [PCG64_STATE, CURAND_STATE], ids=["pcg64", "curand"])
def test_a_checkpoint_from_before_the_philox_streams_resumes_reproducibly(tmp_path, old):
    runs = []
    for name in ("a", "b"):
        run = tmp_path / name
        assert xnet("train", *RUN, "--epochs", "1", "--out", run).code == 0
        set_rng_state(run, old)
        r = xnet("train", *RUN, "--epochs", "2", "--out", run, "--resume")
        assert r.code == 0, r.err
        runs.append(weights(run))
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("rng", "field"),
    [
        ({"generator": "philox4x64-10", "seed": 0, "epoch": 1, "positions": {"dropout": -4}}, "positions['dropout']"),
        ({"generator": "philox4x64-10", "seed": "0", "epoch": 1, "positions": {}}, "random state: seed"),
        ({"generator": "philox4x64-10", "seed": 0, "epoch": None, "positions": {}}, "random state: epoch"),
        ("not a dict", "expected a dict"),
    ],
)
def test_a_malformed_random_state_is_one_line_naming_file_and_field(tmp_path, rng, field):
    run = tmp_path / "run"
    assert xnet("train", *RUN, "--epochs", "1", "--out", run).code == 0
    set_rng_state(run, rng)
    before = (run / "model.npz").read_bytes()
    line = one_line_error(xnet("train", *RUN, "--epochs", "2", "--out", run, "--resume"))
    assert f"{run / 'model.npz'}: not a usable xnet checkpoint" in line and field in line
    assert (run / "model.npz").read_bytes() == before  # the checkpoint is left as it was
