"""Every exportable layer, exported and run by onnxruntime, against xnet's own forward pass (evaluation mode)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx", reason='onnx is not installed (pip install "xnet[onnx]")')

from onnxrun import randomised, run, session  # noqa: E402

from xnet.data.prepare import Normalization  # noqa: E402
from xnet.export import ONNX_LAYERS, UnsupportedLayer, build_onnx, to_onnx  # noqa: E402
from xnet.nn import (  # noqa: E402
    AvgPool2D,
    BatchNorm1D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    MaxPool2D,
    Module,
    ReLU,
    Reshape,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    build_on,
)

IMAGE_MODELS = {
    "conv stride 2 pad 1": lambda: Sequential(Conv2D(3, 4, 3, stride=2, padding=1)),
    "conv dilation 2, no bias": lambda: Sequential(Conv2D(3, 4, 3, dilation=2, bias=False)),
    "conv groups 3": lambda: Sequential(Conv2D(3, 6, (3, 2), padding=(1, 0), groups=3)),
    "conv same, even kernel": lambda: Sequential(Conv2D(3, 2, 4, padding="same")),
    "conv stride (2, 1)": lambda: Sequential(Conv2D(3, 2, 2, stride=(2, 1))),
    "maxpool 2 on odd size": lambda: Sequential(MaxPool2D(2)),
    "maxpool 3 stride 2 pad 1": lambda: Sequential(MaxPool2D(3, stride=2, padding=1)),
    "avgpool 2 on odd size": lambda: Sequential(AvgPool2D(2)),
    "avgpool 3 stride 2 pad 1": lambda: Sequential(AvgPool2D(3, stride=2, padding=1)),
    "batchnorm2d + activations": lambda: Sequential(
        BatchNorm2D(3), LeakyReLU(0.2), Sigmoid(), Tanh(), ReLU(), Identity(), Dropout(0.5)
    ),
    "reshape + nested": lambda: Sequential(
        Flatten(), Reshape((-1, 7)), Sequential(Flatten(), Dense(147, 5, bias=False), BatchNorm1D(5)), Softmax()
    ),
}


@pytest.mark.parametrize("name", list(IMAGE_MODELS))
def test_layer_matches_xnet(name, backend, tmp_path):
    with build_on(backend, "float32"):
        model = randomised(IMAGE_MODELS[name]())
    x = np.random.default_rng(1).normal(size=(4, 3, 7, 7)).astype(np.float32)
    path = to_onnx(model, tmp_path / "m.onnx", (3, 7, 7))
    model.eval()
    expected = backend.to_numpy(model.forward(backend.asarray(x)))
    np.testing.assert_allclose(run(path, x), expected, rtol=1e-5, atol=1e-5)


def test_float64_models_export_as_double(tmp_path):
    with build_on("cpu", "float64"):
        model = randomised(Sequential(Flatten(), Dense(12, 5), Tanh(), BatchNorm1D(5), Dense(5, 3)))
    x = np.random.default_rng(2).normal(size=(2, 3, 4))
    out = run(to_onnx(model, tmp_path / "m.onnx", (3, 4)), x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, model.eval().forward(x), rtol=1e-12)


def test_a_float64_cnn_can_be_exported_as_float32(tmp_path):
    # onnxruntime's CPU provider has no float64 Conv: dtype="float32" writes the graph in float32
    with build_on("cpu", "float64"):
        model = randomised(Sequential(Conv2D(1, 2, 3), Flatten(), Dense(2 * 4 * 4, 3)))
    x = np.random.default_rng(2).normal(size=(2, 1, 6, 6))
    out = run(to_onnx(model, tmp_path / "m.onnx", (1, 6, 6), dtype="float32"), x.astype(np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, model.eval().forward(x), rtol=1e-5, atol=1e-5)


def test_batch_size_is_free_and_normalisation_is_folded_in(tmp_path):
    model = randomised(Sequential(Flatten(), Dense(12, 4), ReLU(), Dense(4, 3)))
    norm = Normalization("standard", 33.3, 71.7)
    path = to_onnx(model, tmp_path / "m.onnx", (3, 4), norm, {"class_names": ["a", "b", "c"]})
    sess = session(path)
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert inp.shape[0] == out.shape[0] == "N" and inp.shape[1:] == [3, 4] and out.shape[1:] == [3]
    raw = np.random.default_rng(3).integers(0, 256, size=(7, 3, 4)).astype(np.float32)
    for n in (1, 7):
        got = sess.run(None, {"input": raw[:n]})[0]
        np.testing.assert_allclose(got, model.eval().forward(norm.apply(raw[:n])), rtol=1e-6, atol=1e-6)
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["class_names"]) == ["a", "b", "c"] and props["xnet_version"]


def test_the_model_is_left_in_the_mode_it_was_in():
    model = Sequential(Flatten(), Dropout(0.5), Dense(4, 2))
    build_onnx(model, (4,))
    assert model.training
    build_onnx(model.eval(), (4,))
    assert not model.training


class Doubler(Module):
    def forward(self, x):
        return 2 * x


def test_a_layer_without_an_onnx_form_is_named_and_nothing_is_written(tmp_path):
    model = Sequential(Flatten(), Sequential(Dense(4, 4), Doubler()))
    with pytest.raises(UnsupportedLayer, match=r"layer 1\.1 Doubler has no ONNX form") as e:
        to_onnx(model, tmp_path / "m.onnx", (4,))
    assert "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_a_subclass_is_not_taken_for_its_base():
    class Shifted(ReLU):
        def forward(self, x):
            return super().forward(x) + 1

    assert ReLU in ONNX_LAYERS
    with pytest.raises(UnsupportedLayer, match="Shifted"):
        build_onnx(Sequential(Shifted()), (3,))


def test_a_shape_the_model_does_not_take_is_xnets_error():
    with pytest.raises(ValueError, match=r"Dense\(4, 2\): expected input \(N, 4\)"):
        build_onnx(Sequential(Dense(4, 2)), (5,))
    with pytest.raises(ValueError, match="input_shape must be the positive sizes"):
        build_onnx(Sequential(Dense(4, 2)), (0,))
