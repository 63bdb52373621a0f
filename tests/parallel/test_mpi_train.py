"""Data-parallel `xnet train` under `mpiexec -n 2` against one process: same weights, identical ranks, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mpirun import assert_same_weights, digits, mpiexec, needs_mpi, one_process, weights

pytestmark = needs_mpi

# SGD: its update is linear in the gradient, so the rounding differences of summing a batch in two
# halves stay at rounding size (Adam divides near-zero gradients by their own size, and a rounding
# difference there moves a weight by a whole learning rate)
MLP = ("--hidden", "32", "--optimizer", "sgd", "--lr", "0.05", "--schedule", "constant", "--batch-size", "128", "-q")
CNN = ("--limit", "384", "--optimizer", "sgd", "--lr", "0.05", "--schedule", "constant", "--batch-size", "128", "-q")


def small_cnn(folder, batch_norm=False, dropout=0.0):
    """A config file for a small CNN: conv 8 [+ batch norm], ReLU, max-pool, dense 32 [+ dropout], dense 10."""
    layers = [{"type": "conv2d", "in_channels": 1, "out_channels": 8, "kernel_size": 3, "padding": "same"}]
    layers += [{"type": "batchnorm2d", "num_channels": 8}] if batch_norm else []
    layers += [{"type": "relu"}, {"type": "maxpool2d", "kernel_size": 2}, {"type": "flatten"},
               {"type": "dense", "in_features": 8 * 14 * 14, "out_features": 32}, {"type": "relu"}]  # fmt: skip
    layers += [{"type": "dropout", "p": dropout}] if dropout else []
    layers += [{"type": "dense", "in_features": 32, "out_features": 10}]
    text = "".join(
        "[[model.layers]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in layer.items()) for layer in layers
    )
    path = folder / "cnn.toml"
    path.write_text(text)
    return ("--config", path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return f"idx:{digits(tmp_path_factory.mktemp('mpi') / 'digits')}"


def _both(tmp_path, data, *options):
    """Train with 2 ranks (checking after every step that their weights are bit-identical) and with 1 process."""
    two = mpiexec(2, "train", "--dataset", data, *options, "--out", tmp_path / "two", driver=("check", 0, 0))
    assert two.code == 0, two.err
    one = one_process("train", "--dataset", data, *options, "--out", tmp_path / "one")
    assert one.code == 0, one.err
    return two, tmp_path / "two", tmp_path / "one"


def _history(run):
    return json.loads((run / "metrics.json").read_text())["epochs"]


@pytest.fixture(scope="module")
def mlp_runs(tmp_path_factory, data):
    """The MLP trained for 3 epochs on 2 ranks (checked identical after every step) and in one process."""
    return _both(tmp_path_factory.mktemp("mlp"), data, *MLP, "--epochs", "3")


def test_two_ranks_train_the_mlp_one_process_trains(mlp_runs):
    two, a, b = mlp_runs
    assert "identical after 12 steps and 3 records" in two.out  # 3 epochs of 4 global batches, checked after each
    assert json.loads((a / "metrics.json").read_text())["ranks"] == 2
    assert_same_weights(a, b)
    for r2, r1 in zip(_history(a), _history(b), strict=True):
        assert r2["train_loss"] == pytest.approx(r1["train_loss"], rel=1e-5)
        assert r2["train_accuracy"] == r1["train_accuracy"] and r2["test_accuracy"] == r1["test_accuracy"]


def test_two_ranks_train_a_cnn_with_dropout_and_augmentation_as_one_process(tmp_path, data):
    # each rank draws its rows of the whole batch's dropout masks and shifts (rng.batch_shard)
    two, a, b = _both(tmp_path, data, *CNN, *small_cnn(tmp_path, dropout=0.3), "--augment", "--epochs", "2")
    assert "identical after 6 steps" in two.out
    assert_same_weights(a, b)


def test_a_summed_loss_is_summed_over_the_ranks(tmp_path, data):
    # the global batch's loss is the sum of the ranks' sums: gradients all-reduced as a sum, not averaged
    two, a, b = _both(tmp_path, data, *MLP, "--loss-reduction", "sum", "--lr", "0.0005", "--epochs", "2")
    assert "identical after 8 steps" in two.out
    assert_same_weights(a, b)
    assert _history(a)[-1]["train_loss"] == pytest.approx(_history(b)[-1]["train_loss"], rel=1e-5)


def test_evaluation_is_shared_out_and_gives_one_process_numbers(tmp_path):
    # 51 validation and 127 test samples: uneven shares of 25/26 and 63/64; a summed loss and an L2 penalty
    # (added once to the ranks' sum, not once per rank); every rank's records are compared after every epoch
    data = f"idx:{digits(tmp_path / 'digits', 563, 127)}"
    two, a, b = _both(tmp_path, data, *MLP, "--val-split", "0.09", "--loss-reduction", "sum", "--lr", "0.0005",
                      "--l2", "0.01", "--epochs", "2")  # fmt: skip
    assert "identical after 8 steps and 2 records" in two.out  # 512 training samples, 4 batches an epoch
    for r2, r1 in zip(_history(a), _history(b), strict=True):
        for split in ("val", "test"):
            assert r2[f"{split}_loss"] == pytest.approx(r1[f"{split}_loss"], rel=1e-5)
            assert r2[f"{split}_accuracy"] == r1[f"{split}_accuracy"]
    # the same weights evaluated whole in one process: the ranks' shares summed in another order
    whole = one_process("evaluate", a / "model.npz", "--split", "test", "--json")
    assert whole.code == 0, whole.err
    result, last = json.loads(whole.out), _history(a)[-1]
    assert result["samples"] == 127 and last["test_accuracy"] == result["accuracy"]
    # `xnet evaluate` has no optimizer, so no penalty: lam/2 * sum(w^2) over the weights, per term of a
    # training batch of 128 (a summed loss), added once
    penalty = 0.005 * sum(float(np.sum(np.square(w, dtype=np.float64))) for k, w in weights(a).items()
                          if k.endswith("weight")) / 128  # fmt: skip
    assert last["test_loss"] == pytest.approx(result["loss"] + penalty, rel=1e-6)


def test_synchronised_batch_norm_trains_as_one_process_and_per_rank_statistics_do_not(tmp_path, data):
    model = small_cnn(tmp_path, batch_norm=True)
    two, a, b = _both(tmp_path, data, *CNN, *model, "--sync-batch-norm", "--epochs", "2")
    assert "identical after 6 steps" in two.out
    assert_same_weights(a, b)  # running statistics included
    per_rank = mpiexec(2, "train", "--dataset", data, *CNN, *model, "--epochs", "2", "--out", tmp_path / "c")
    assert per_rank.code == 0, per_rank.err
    with pytest.raises(AssertionError):  # each rank normalised its own 64 samples: another computation
        assert_same_weights(tmp_path / "c", b)


def test_a_run_started_on_two_ranks_continues_on_one_as_if_uninterrupted(tmp_path, data, mlp_runs):
    out = tmp_path / "run"
    start = mpiexec(2, "train", "--dataset", data, *MLP, "--epochs", "2", "--out", out)
    assert start.code == 0, start.err
    end = one_process("train", "--resume", "--out", out, "--epochs", "3", "-q")
    assert end.code == 0, end.err
    assert [r["epoch"] for r in _history(out)] == [1, 2, 3]
    assert_same_weights(out, mlp_runs[2])  # the one-process run of 3 epochs
