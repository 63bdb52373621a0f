"""Workload 8: pytorch/examples' MNIST network, built from one layer list by xnet and (when installed) PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import torch_side, workloads, xnet_side
from benchmarks.run import parse_args, selected
from xnet.backends import get_backend
from xnet.nn import Conv2D, Dense, Dropout, MaxPool2D


def workload_8() -> workloads.Workload:
    return next(w for w in workloads.EPOCH_WORKLOADS if w.id == 8)


def test_workload_8_is_the_example_network_at_batch_64_and_runs_by_default():
    w = workload_8()
    assert (w.batch, w.optimizer, w.lr, w.images, w.target) == (64, "adadelta", 1.0, True, 0.9)
    assert 8 in selected(parse_args([])) and selected(parse_args(["--only", "8"])) == [8]
    model = xnet_side.build_model(w.layers, get_backend("cpu"), 0)
    convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    assert [(c.in_channels, c.out_channels, c.pads) for c in convs] == [(1, 32, (0, 0, 0, 0)), (32, 64, (0, 0, 0, 0))]
    assert [d.p for d in model.layers if isinstance(d, Dropout)] == [0.25, 0.5]
    assert sum(isinstance(layer, MaxPool2D) for layer in model.layers) == 1
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    assert [tuple(d.weight.data.shape) for d in dense] == [(9216, 128), (128, 10)]
    model.train(False)
    assert model.forward(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)  # 28 -> 26 -> 24 -> 12: 64*12*12


@pytest.mark.skipif(torch_side.torch is None, reason="PyTorch is not installed (the bench extra)")
def test_pytorch_builds_the_same_network_with_xnets_weights():
    w = workload_8()
    model = xnet_side.build_model(w.layers, get_backend("cpu"), 0)
    model.train(False)
    twin = torch_side.build_model(w.layers, model, "cpu").eval()
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    want = twin(torch_side.torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(np.asarray(model.forward(x)), want, rtol=1e-4, atol=1e-5)


def test_workload_8_trains_with_adadelta_as_the_example():
    from xnet.optim import Adadelta

    model = xnet_side.build_model(workload_8().layers, get_backend("cpu"), 0)
    opt = xnet_side.make_optimizer("adadelta", 1.0, model)
    assert isinstance(opt, Adadelta)
    assert (opt.param_groups[0]["lr"], opt.param_groups[0]["rho"], opt.param_groups[0]["eps"]) == (1.0, 0.9, 1e-6)
