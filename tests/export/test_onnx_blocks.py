"""Smooth activations, LayerNorm, global/adaptive pooling, residual blocks and built lazy layers under onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason='onnx is not installed (pip install "xnet[onnx]")')

from onnxrun import randomised, run  # noqa: E402

from xnet.export import UnsupportedLayer, build_onnx, to_onnx  # noqa: E402
from xnet.nn import (  # noqa: E402
    ELU,
    GELU,
    AdaptiveAvgPool2D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    LayerNorm,
    LazyConv2D,
    LazyDense,
    ReLU,
    Residual,
    Sequential,
    SiLU,
    Softplus,
    build_on,
)

SHAPE = (3, 6, 8)  # (C, H, W) of one sample: H and W differ, so a swapped pair of attributes shows

# name -> (model, input scale): inputs are N(0, scale), wide enough to reach every branch (Softplus's
# threshold, ELU's negative side, GELU's tails)
CASES = {
    "gelu exact": (lambda: Sequential(GELU()), 3.0),
    "gelu tanh": (lambda: Sequential(GELU("tanh")), 3.0),
    "silu": (lambda: Sequential(SiLU()), 3.0),
    "elu alpha 0.3": (lambda: Sequential(ELU(0.3)), 3.0),
    "softplus": (lambda: Sequential(Softplus()), 10.0),
    "softplus beta 2 threshold 1": (lambda: Sequential(Softplus(beta=2.0, threshold=1.0)), 3.0),
    "softplus beta 0.5 threshold 30": (lambda: Sequential(Softplus(beta=0.5, threshold=30.0)), 40.0),
    "layernorm over (H, W)": (lambda: Sequential(LayerNorm((6, 8))), 3.0),
    "layernorm over W, eps 0.5": (lambda: Sequential(LayerNorm(8, eps=0.5)), 1.0),
    "layernorm over (C, H, W), no affine": (lambda: Sequential(LayerNorm(SHAPE, elementwise_affine=False)), 3.0),
    "layernorm after dense": (lambda: Sequential(Flatten(), Dense(144, 5), LayerNorm(5)), 1.0),
    "global avg pool": (lambda: Sequential(GlobalAvgPool2D()), 1.0),
    "global avg pool keepdims": (lambda: Sequential(GlobalAvgPool2D(keepdims=True)), 1.0),
    "adaptive avg pool, uniform bins (3, 2)": (lambda: Sequential(AdaptiveAvgPool2D((3, 2))), 1.0),
    "adaptive avg pool, uneven bins (4, 3)": (lambda: Sequential(AdaptiveAvgPool2D((4, 3))), 1.0),
    "adaptive avg pool, larger than input (7, 9)": (lambda: Sequential(AdaptiveAvgPool2D((7, 9))), 1.0),
    "residual, identity shortcut": (lambda: Sequential(Residual([Conv2D(3, 3, 3, padding=1), ReLU()])), 1.0),
    "residual, conv shortcut, relu": (
        lambda: Sequential(
            Residual(
                [Conv2D(3, 4, 3, stride=2, padding=1), BatchNorm2D(4), ReLU(), Conv2D(4, 4, 3, padding="same")],
                shortcut=[Conv2D(3, 4, 1, stride=2), BatchNorm2D(4)],
                activation="relu",
            ),
            GlobalAvgPool2D(),
            Dense(4, 3),
        ),
        1.0,
    ),  # fmt: skip
    "residual nested, elu activation": (
        lambda: Sequential(
            Conv2D(3, 4, 1),
            Residual([Residual([Conv2D(4, 4, 3, padding=1)], activation=ELU(0.5)), BatchNorm2D(4)], activation="gelu"),
            Residual([Conv2D(4, 4, 1)], shortcut=Sequential(Conv2D(4, 4, 1, bias=False))),
        ),
        1.0,
    ),
}


def _x(scale: float, n: int = 5) -> np.ndarray:
    return (np.random.default_rng(1).normal(size=(n, *SHAPE)) * scale).astype(np.float32)


@pytest.mark.parametrize("name", list(CASES))
def test_layer_matches_xnet(name, backend, tmp_path):
    make, scale = CASES[name]
    with build_on(backend, "float32"):
        model = randomised(make())
    x = _x(scale)
    path = to_onnx(model, tmp_path / "m.onnx", SHAPE)
    model.eval()
    expected = backend.to_numpy(model.forward(backend.asarray(x)))
    got = run(path, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


# name -> the same layers with one attribute changed (same parameter names and shapes): the exported
# model must differ from that one by ten times the 1e-5 above, or a wrong attribute could pass
WRONG_ATTRIBUTE = {
    "gelu exact": lambda: Sequential(GELU("tanh")),
    "gelu tanh": lambda: Sequential(GELU()),
    "elu alpha 0.3": lambda: Sequential(ELU(1.0)),
    "softplus beta 2 threshold 1": lambda: Sequential(Softplus(beta=2.0)),  # threshold 20
    "softplus beta 0.5 threshold 30": lambda: Sequential(Softplus(beta=1.0, threshold=30.0)),
    "layernorm over W, eps 0.5": lambda: Sequential(LayerNorm(8)),
    "layernorm over (C, H, W), no affine": lambda: Sequential(LayerNorm((6, 8), elementwise_affine=False)),
    "residual, identity shortcut": lambda: Sequential(
        Residual([Conv2D(3, 3, 3, padding=1), ReLU()], activation="relu")
    ),
}


@pytest.mark.parametrize("name", list(WRONG_ATTRIBUTE))
def test_the_inputs_tell_a_wrong_attribute_apart(name, tmp_path):
    make, scale = CASES[name]
    model = randomised(make())
    wrong = WRONG_ATTRIBUTE[name]()
    wrong.load_state_dict(model.state_dict())
    x = _x(scale)
    got = run(to_onnx(model, tmp_path / "m.onnx", SHAPE), x)
    assert np.abs(got - wrong.eval().forward(x)).max() > 1e-4  # GELU tanh vs exact: at most 5e-4 apart


def test_onnx_ops_and_attributes(tmp_path):
    def nodes(model):
        return [(n.op_type, {a.name: a for a in n.attribute}) for n in build_onnx(model, SHAPE).graph.node]

    (op, attrs), = nodes(Sequential(AdaptiveAvgPool2D((3, 2))))  # fmt: skip
    assert op == "AveragePool" and list(attrs["kernel_shape"].ints) == list(attrs["strides"].ints) == [2, 4]
    assert [op for op, _ in nodes(Sequential(AdaptiveAvgPool2D((4, 3))))] == ["MatMul", "MatMul"]
    assert [op for op, _ in nodes(Sequential(GlobalAvgPool2D()))] == ["GlobalAveragePool", "Flatten"]
    (op, attrs), = nodes(Sequential(LayerNorm((6, 8), eps=1e-3)))  # fmt: skip
    assert op == "LayerNormalization" and attrs["axis"].i == -2 and attrs["epsilon"].f == pytest.approx(1e-3)
    assert "Erf" in [op for op, _ in nodes(Sequential(GELU()))]


def test_parameters_keep_their_state_dict_names(tmp_path):
    model = CASES["residual nested, elu activation"][0]()
    names = {i.name for i in build_onnx(model, SHAPE).graph.initializer}
    assert "1.body.0.body.0.weight" in names and "2.shortcut.0.weight" in names
    assert set(model.state_dict()) <= names


def test_a_residual_block_alone_is_a_model(tmp_path):
    model = randomised(Residual([Conv2D(3, 3, 1)], activation="silu"))
    x = _x(1.0)
    np.testing.assert_allclose(run(to_onnx(model, tmp_path / "m.onnx", SHAPE), x), model.eval().forward(x),
                               rtol=1e-5, atol=1e-5)  # fmt: skip


def test_built_lazy_layers_export_as_conv_and_dense(backend, tmp_path):
    with build_on(backend, "float32"):
        model = Sequential(LazyConv2D(4, 3, padding=1), ReLU(), Flatten(), LazyDense(5)).build(SHAPE)
        randomised(model)
    ops = [n.op_type for n in build_onnx(model, SHAPE).graph.node]
    assert ops == ["Conv", "Relu", "Flatten", "Gemm"]
    x = _x(1.0)
    expected = backend.to_numpy(model.eval().forward(backend.asarray(x)))
    np.testing.assert_allclose(run(to_onnx(model, tmp_path / "m.onnx", SHAPE), x), expected, rtol=1e-5, atol=1e-5)


def test_a_lazy_layer_not_built_is_refused_and_stays_unbuilt(tmp_path):
    model = Sequential(Conv2D(3, 4, 1), Residual([LazyConv2D(4, 1)]), Flatten(), LazyDense(5))
    with pytest.raises(UnsupportedLayer, match=r"layer 1\.body\.0 \(LazyConv2D\) \(and 1 more lazy layers\) is not"):
        to_onnx(model, tmp_path / "m.onnx", SHAPE)
    assert list(tmp_path.iterdir()) == [] and isinstance(model.layers[3], LazyDense)
