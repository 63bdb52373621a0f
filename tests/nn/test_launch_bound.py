"""Launch-bound layer paths (whole-batch, fewest operations) give the chunked CPU paths' results.

Both run here on NumPy in float64: the backend's `launch_bound` flag picks the path, so the
comparison needs no GPU. The strict backend runs the launch-bound paths in every other test.
"""

from __future__ import annotations

import numpy as np
import pytest

from xnet.backends import get_backend
from xnet.nn.activations import ReLU
from xnet.nn.batchnorm import BatchNorm1D, BatchNorm2D
from xnet.nn.conv import Conv2D
from xnet.nn.dense import Dense
from xnet.nn.module import build_on
from xnet.nn.pooling import MaxPool2D
from xnet.nn.quads import CELL_CODES, max_of_quads, quad_codes, route_by_codes
from xnet.nn.sequential import Sequential
from xnet.nn.shape import Flatten


def _model(launch_bound: bool, fuse: bool) -> tuple[Sequential, object]:
    backend = get_backend("cpu")
    backend.launch_bound = launch_bound
    with build_on(backend, "float64"):
        model = Sequential(
            Conv2D(2, 4, 3, padding=1, bias=False), BatchNorm2D(4), ReLU(), MaxPool2D(2),
            Conv2D(4, 3, 3, padding=1), ReLU(), MaxPool2D(2),
            Conv2D(3, 3, 3, padding=1), MaxPool2D(2), BatchNorm2D(3), ReLU(),
            Flatten(), Dense(3, 5), BatchNorm1D(5), ReLU(), Dense(5, 2),
        )  # fmt: skip
    model.fuse = fuse
    rng = np.random.default_rng(7)
    for p in model.parameters():  # gamma and beta away from 1 and 0
        p.data = p.data + rng.standard_normal(p.data.shape) * 0.3
    return model, backend


def _steps(launch_bound: bool, fuse: bool, training: bool) -> list[np.ndarray]:
    model, _ = _model(launch_bound, fuse)
    model.train(training)
    rng = np.random.default_rng(3)
    out = []
    for _ in range(2):  # running statistics move, buffers are reused, gradients add up
        x = rng.standard_normal((6, 2, 8, 8))
        x[0, :, :2, :2] = 0.0  # tied windows and zeros at the ReLU
        y = model.forward(x)
        dx = model.backward(rng.standard_normal(y.shape))
        out += [np.array(y), np.array(dx)]
    out += [np.array(p.grad) for p in model.parameters()] + [np.array(b) for _, b in model.named_buffers()]
    return out


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_launch_bound_model_equals_the_chunked_one(fuse, training):
    want = _steps(False, fuse, training)
    got = _steps(True, fuse, training)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_quad_codes_name_the_first_maximum_as_max_of_quads_does():
    rng = np.random.default_rng(0)
    q = rng.integers(-2, 3, size=(50, 3, 4, 2, 5, 2)).astype(np.float64)  # many ties, zeros
    codes = CELL_CODES.reshape(1, 1, 1, 2, 1, 2)
    m_ref, cell = max_of_quads(np, q)
    m, code = quad_codes(np, q, codes)
    np.testing.assert_array_equal(m, m_ref)
    np.testing.assert_array_equal(code, CELL_CODES.reshape(-1)[cell])
    y, code_relu = quad_codes(np, q, codes, relu=True)
    np.testing.assert_array_equal(y, np.maximum(m_ref, 0))
    np.testing.assert_array_equal(code_relu, np.where(m_ref > 0, code, 0))
    # routing: each window's gradient lands on its first maximum only, nowhere when code is 0
    g = rng.standard_normal(m.shape)
    routed = route_by_codes(np, g, code_relu, codes)
    expected = np.zeros_like(q)
    for k, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        expected[:, :, :, i, :, j] = np.where((cell == k) & (m_ref > 0), g, 0.0)
    np.testing.assert_array_equal(routed, expected)


def test_a_layer_chooses_its_formulation_when_built_and_again_when_moved(monkeypatch):
    # the flag is read when the layer is built and when Module.to gives it another backend, never
    # in forward or backward: flipping it on a built layer's backend changes nothing
    from xnet.nn.conv_wide import WideConv

    wide_calls = []
    forward = WideConv.forward
    monkeypatch.setattr(WideConv, "forward", lambda self, *a: wide_calls.append(1) or forward(self, *a))
    cpu = get_backend("cpu")
    with build_on(cpu, "float64"):
        model = Sequential(Conv2D(1, 2, 3), BatchNorm2D(2), ReLU(), MaxPool2D(2))
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6))
    want = model.forward(x)
    cpu.launch_bound = True  # too late: the layers chose the chunked paths when built
    model.forward(x)
    assert wide_calls == []
    strict = get_backend("strict")  # launch-bound
    model.to(strict)
    got = model.forward(strict.asarray(x, "float64"))
    assert wide_calls == [1]  # moved, the layers took the whole-batch paths
    np.testing.assert_allclose(strict.to_numpy(got), want, rtol=1e-10, atol=1e-12)
