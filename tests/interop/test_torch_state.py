"""xnet <-> PyTorch state dicts: layouts, round trips, mismatches; against PyTorch itself where it is installed."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.interop_check import torch_twin
from xnet.errors import XnetError
from xnet.interop import StateDictMismatch, from_torch_state_dict, to_torch_state_dict
from xnet.nn import (
    ELU,
    GELU,
    AdaptiveAvgPool2D,
    BatchNorm1D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    LayerNorm,
    LazyDense,
    MaxPool2D,
    ReLU,
    Residual,
    Sequential,
    SiLU,
    Softplus,
    build_on,
)


def _model() -> Sequential:
    """Every layer type with arrays, one nested: names "0.weight" ... "6.1.running_var"."""
    return Sequential(
        Conv2D(1, 2, 3, padding=1), BatchNorm2D(2), ReLU(), MaxPool2D(2), Flatten(),
        Dense(2 * 3 * 3, 4), Sequential(BatchNorm1D(4), Dense(4, 3, bias=False)),
    )  # fmt: skip


def _blocks_model() -> Sequential:
    """The smooth activations, layer norms, adaptive pools and residual blocks, one nested, on (1, 6, 6) images."""
    return Sequential(
        Conv2D(1, 4, 3, padding=1), GELU(),
        Residual(  # "2.body.*", "2.body.3.body.0.*", "2.shortcut.*"
            [Conv2D(4, 4, 3, padding=1), BatchNorm2D(4), SiLU(), Residual([Conv2D(4, 4, 1)], activation=ELU(0.5))],
            shortcut=[Conv2D(4, 4, 1, bias=False), BatchNorm2D(4)], activation="relu",
        ),
        LayerNorm((6, 6)), AdaptiveAvgPool2D((4, 3)), GlobalAvgPool2D(keepdims=True), Flatten(),
        Dense(4, 8), LayerNorm(8, elementwise_affine=False), Softplus(2.0, 1.0), GELU("tanh"),
        Residual([Dense(8, 8), LayerNorm(8)]), Dense(8, 3),
    )  # fmt: skip


def _random_state(model: Sequential, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(0.5, 1.5, v.shape) for k, v in model.state_dict().items()}


def test_torch_layouts_without_torch(backend):
    with build_on(backend):
        model = _model()
    model.load_state_dict(_random_state(model, 0))
    own = model.state_dict()
    theirs = to_torch_state_dict(model, tensors=False)
    assert theirs["5.weight"].shape == (4, 18) and np.array_equal(theirs["5.weight"], own["5.weight"].T)
    assert np.array_equal(theirs["6.1.weight"], own["6.1.weight"].T)  # inside a nested Sequential too
    assert np.array_equal(theirs["0.weight"], own["0.weight"])  # Conv2D: the same layout
    assert theirs["1.num_batches_tracked"].dtype == np.int64 and "6.0.num_batches_tracked" in theirs
    assert set(theirs) - set(own) == {"1.num_batches_tracked", "6.0.num_batches_tracked"}


def test_round_trip_is_identical(backend):
    with build_on(backend):
        source, target = _model(), _model()
    source.load_state_dict(_random_state(source, 1))
    from_torch_state_dict(target, to_torch_state_dict(source, tensors=False))
    a, b = source.state_dict(), target.state_dict()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_new_layers_round_trip_under_pytorchs_names(backend):
    with build_on(backend):
        source, target = _blocks_model(), _blocks_model()
    source.load_state_dict(_random_state(source, 5))
    theirs = to_torch_state_dict(source, tensors=False)
    for name in ("2.body.0.weight", "2.body.3.body.0.bias", "2.shortcut.1.running_mean", "3.weight", "11.body.1.bias"):
        assert np.array_equal(theirs[name], source.state_dict()[name])  # the same layout as PyTorch's
    assert theirs["3.weight"].shape == (6, 6) and theirs["12.weight"].shape == (3, 8)  # Dense still transposed
    from_torch_state_dict(target, theirs)
    a, b = source.state_dict(), target.state_dict()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_lazy_layer_not_built_is_refused_both_ways():
    model = Sequential(Flatten(), Residual([LazyDense(6)]), Dense(6, 2))
    with pytest.raises(XnetError, match=r"layer 1\.body\.0 \(LazyDense\) is not built yet"):
        to_torch_state_dict(model, tensors=False)
    with pytest.raises(XnetError, match=r"cannot load a PyTorch state dict: layer 1\.body\.0 \(LazyDense\)"):
        from_torch_state_dict(model, {})
    model.build((3, 2))
    assert to_torch_state_dict(model, tensors=False)["1.body.0.weight"].shape == (6, 6)


def test_num_batches_tracked_may_be_left_out():
    model = _model()
    state = to_torch_state_dict(model, tensors=False)
    del state["1.num_batches_tracked"]
    from_torch_state_dict(model, state)


def test_mismatches_are_listed_and_nothing_is_loaded():
    model = _model()
    before = model.state_dict()
    state = {k: v + 1 for k, v in to_torch_state_dict(model, tensors=False).items()}
    state["5.weight"] = state["5.weight"].T  # xnet's layout, not PyTorch's
    del state["0.bias"]
    state["fc.weight"] = np.zeros(3)
    with pytest.raises(StateDictMismatch) as e:
        from_torch_state_dict(model, state)
    line = str(e.value)
    assert "\n" not in line
    assert "0.bias: missing" in line and "fc.weight: not in this model" in line
    assert "5.weight: expected shape (4, 18), got (18, 4)" in line
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_only_the_first_mismatches_are_listed():
    state = {f"extra{i}": np.zeros(1) for i in range(8)}
    with pytest.raises(StateDictMismatch, match=r"extra4: not in this model; and \d+ more$"):
        from_torch_state_dict(_model(), {**to_torch_state_dict(_model(), tensors=False), **state})
    with pytest.raises(StateDictMismatch, match="expected a state dict .* got a list"):
        from_torch_state_dict(_model(), [])


# -- against PyTorch ------------------------------------------------------------------------------------


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed (the bench environment has it)")


@pytest.mark.parametrize("make", [_model, _blocks_model])
def test_a_torch_twin_loads_the_state_and_computes_the_same(make, torch):
    model = make()
    model.load_state_dict(_random_state(model, 2))
    model.eval()
    twin = torch_twin(model)
    twin.load_state_dict(to_torch_state_dict(model))  # strict: names, shapes and buffers all fit
    twin.eval()
    x = np.random.default_rng(3).normal(size=(16, 1, 6, 6)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(twin(torch.from_numpy(x)).numpy(), model.forward(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [_model, _blocks_model])
def test_weights_made_in_torch_load_into_xnet(make, torch):
    model = make().eval()
    torch.manual_seed(0)
    twin = torch_twin(model)
    twin.train()
    twin(torch.randn(8, 1, 6, 6))  # batch-norm statistics that are not 0 and 1
    twin.eval()
    from_torch_state_dict(model, twin.state_dict())
    x = np.random.default_rng(4).normal(size=(16, 1, 6, 6)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(model.forward(x), twin(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("preset", ["mlp", "cnn", "bn-cnn", "residual-cnn"])
def test_presets_on_1000_mnist_test_images(preset, torch, mnist_dir):
    from benchmarks.interop_check import check
    from xnet.data import load_dataset

    ds = load_dataset("mnist", data_dir=mnist_dir)
    result = check(preset, ds.train.x[:512], ds.test.x[:1000], ds.train.y[:512])
    assert result["round_trip_identical"] and result["same_class"] == 1.0
    assert result["max_abs_diff"] <= 1e-5
