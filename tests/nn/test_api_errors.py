"""The Python API's public boundary: inputs to a module, state dicts, .to(), parameters, initialisers,
Sequential.append/summary and train(): clear TypeError/ValueError instead of silent damage."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.backends import get_backend
from xnet.nn import (
    AvgPool2D,
    BatchNorm1D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    MaxPool2D,
    Parameter,
    ReLU,
    Sequential,
    build_on,
)
from xnet.nn.init import initialize
from xnet.nn.module import accepted_arguments
from xnet.optim import SGD

# (layer factory, input shape) for every kind of layer whose input is checked at the boundary
LAYERS = [
    (lambda: Conv2D(1, 1, 1, bias=False), (1, 1, 2, 2)),
    (lambda: Dense(4, 3), (2, 4)),
    (lambda: MaxPool2D(2), (1, 1, 4, 4)),
    (lambda: AvgPool2D(3), (1, 1, 3, 3)),
    (lambda: BatchNorm1D(4), (2, 4)),
    (lambda: Dropout(0.5), (2, 4)),
    (lambda: ReLU(), (2, 4)),
    (lambda: Sequential(Flatten(), Dense(4, 2)), (2, 4)),
]
LAYER_IDS = ["conv", "dense", "maxpool", "avgpool3", "batchnorm", "dropout", "relu", "sequential"]


def _mlp(backend) -> Sequential:
    with build_on(backend, "float32"):
        return Sequential(Dense(2, 3), ReLU(), Dense(3, 1))


def _weights(model: Sequential) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in model.state_dict().items()}


# -- 1. inputs: integer arrays refused, lists converted --------------------------------------------


@pytest.mark.parametrize("int_dtype", ["int64", "bool"])
@pytest.mark.parametrize(("make", "shape"), LAYERS, ids=LAYER_IDS)
def test_integer_input_is_refused(backend, make, shape, int_dtype):
    with build_on(backend, "float32"):
        layer = make()
    x = backend.asarray(np.ones(shape, dtype=int_dtype))
    with pytest.raises(
        TypeError,
        match=rf"^{type(layer).__name__}: expected a floating-point input "
        rf"\(float32 or float64\), got {int_dtype}; convert with ",
    ):
        layer(x)


def test_integer_input_message_suggests_astype():
    with pytest.raises(TypeError, match=r"got int64; convert with x\.astype\(np\.float32\)$"):
        Conv2D(1, 1, 1)(np.full((1, 1, 2, 2), 3, dtype=np.int64))


def test_list_input_is_converted_to_the_model_dtype(backend):
    with build_on(backend, "float32"):
        conv = Conv2D(1, 1, 1, bias=False, init="constant(value=0.5)")
        dense = Dense(4, 3)
    y = conv([[[[3, 3], [3, 3]]]])  # ints in a list: converted, as Keras does, not truncated
    assert y.dtype == backend.dtype("float32")
    np.testing.assert_array_equal(backend.to_numpy(y), np.full((1, 1, 2, 2), 1.5, np.float32))
    rows = [[1.0, 2, 3, 4]]
    expected = backend.to_numpy(dense(backend.asarray(rows, "float32")))
    np.testing.assert_array_equal(backend.to_numpy(dense(rows)), expected)
    np.testing.assert_array_equal(backend.to_numpy(dense(tuple(map(tuple, rows)))), expected)


def test_numpy_scalar_input_is_converted():
    y = Identity()(np.float64(2.5))
    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and float(y) == 2.5


@pytest.mark.parametrize("bad", ["abc", None, {"x": 1}])
def test_non_array_input_is_refused(backend, bad):
    with build_on(backend, "float32"):
        layer = Dense(2, 2)
    with pytest.raises(TypeError, match=r"^Dense: expected an array \(or a list of numbers\), got "):
        layer(bad)


def test_ragged_list_input_names_the_layer():
    with pytest.raises(ValueError, match=r"^Dense: the input list is not an array of numbers"):
        Dense(2, 2)([[1.0, 2.0], [3.0]])


def test_numpy_float_input_is_not_copied():
    x = np.ones((2, 3), np.float32)
    assert Identity()(x) is x


def test_strict_backend_still_refuses_numpy_arrays():
    with build_on("strict", "float32"):
        layer = Dense(2, 2)
    with pytest.raises((TypeError, RuntimeError, ValueError)):
        layer(np.ones((1, 2), np.float32))


# -- 2. state_dict copies out, load_state_dict copies in -----------------------------------------


def test_state_dict_is_a_copy_so_best_weights_can_be_restored(backend):
    model = _mlp(backend)
    best = model.state_dict()
    saved = {k: v.copy() for k, v in best.items()}
    opt = SGD(model.parameters(), lr=0.5)
    x, y = backend.asarray(np.ones((4, 2)), "float32"), backend.asarray(np.ones((4, 1)), "float32")
    model.backward(model.forward(x) - y)
    opt.step()
    for k in saved:  # the step changed the model, not the dict taken before it
        np.testing.assert_array_equal(best[k], saved[k])
    assert any(not np.array_equal(v, saved[k]) for k, v in model.state_dict().items())
    model.load_state_dict(best)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, saved[k])


def test_load_state_dict_copies_the_callers_arrays(backend):
    model = _mlp(backend)
    state = model.state_dict()
    model.load_state_dict(state)
    before = _weights(model)
    for v in state.values():
        v[...] = 7.0  # the caller reuses its arrays
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_state_dict_of_batchnorm_buffers_is_a_copy():
    bn = BatchNorm1D(2)
    state = bn.state_dict()
    bn(np.arange(8, dtype=np.float32).reshape(4, 2))  # a training step updates the running statistics
    np.testing.assert_array_equal(state["running_mean"], [0.0, 0.0])


@pytest.mark.parametrize("bad", [None, [np.zeros((2, 3))], "weights"])
def test_load_state_dict_refuses_a_non_mapping(bad):
    with pytest.raises(TypeError, match=r"^load_state_dict: expected a dict of arrays by name .*, got "):
        _mlp("cpu").load_state_dict(bad)


@pytest.mark.parametrize(
    ("value", "what"),
    [("abc", "is a str, expected an array"), (np.full((2, 3), "a"), "holds str32 values, expected numbers")],
)
def test_load_state_dict_refuses_non_numeric_values(value, what):
    model = _mlp("cpu")
    state = model.state_dict()
    state["0.weight"] = value
    with pytest.raises(TypeError, match=rf"^load_state_dict: '0\.weight' {what}$"):
        model.load_state_dict(state)


def test_load_state_dict_accepts_nan_as_pytorch_does():
    model = _mlp("cpu")
    state = model.state_dict()
    state["0.weight"][...] = np.nan
    model.load_state_dict(state)
    assert np.isnan(model[0].weight.data).all()


# -- 3. .to() checks the dtype before changing anything --------------------------------------------


@pytest.mark.parametrize("dtype", ["int64", "float16", np.int32, "f"])
def test_to_refuses_non_float_dtypes_and_leaves_the_model_unchanged(backend, dtype):
    model = _mlp(backend)
    before = _weights(model)
    with pytest.raises(ValueError, match=r"^Sequential\.to: dtype must be 'float32' or 'float64', got "):
        model.to(backend, dtype)
    for m in model.modules():
        assert m.dtype == "float32"
    assert all(p.data.dtype == backend.dtype("float32") for p in model.parameters())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    model(backend.asarray(np.ones((1, 2)), "float32"))


def test_to_accepts_numpy_float_dtypes_as_names():
    model = _mlp("cpu").to("cpu", np.float64)
    assert model.dtype == "float64" and model[0].weight.data.dtype == np.float64


# -- 4. assigning an array over a Parameter ---------------------------------------------------


def test_assigning_an_array_over_a_parameter_is_refused(backend):
    with build_on(backend, "float32"):
        d = Dense(2, 3)
    with pytest.raises(
        TypeError,
        match=r"^Dense: cannot assign '.*' as parameter 'weight' \(Parameter or None "
        r"expected\); to change its values assign to \.weight\.data$",
    ):
        d.weight = backend.asarray(np.zeros((2, 3)), "float32")
    assert [p.name for p in d.parameters()] == ["weight", "bias"]


def test_assigning_a_parameter_or_none_is_allowed():
    d = Dense(2, 3)
    d.weight = Parameter(np.zeros((2, 3), np.float32), "weight")
    d.bias = None
    assert [p.name for p in d.parameters()] == ["weight"]
    d.weight.data = np.ones((2, 3), np.float32)  # the suggested way to change values
    np.testing.assert_array_equal(d([[1.0, 1.0]]), [[2.0, 2.0, 2.0]])


# -- 5. initialisers -----------------------------------------------------------------------------


def test_callable_init_of_wrong_shape_is_refused(backend):
    with build_on(backend, "float32"), pytest.raises(ValueError, match=r"returned shape \(7, 7\); expected \(2, 3\)"):
        Dense(2, 3, init=lambda b, s, fi, fo, dt: np.zeros((7, 7)))


@pytest.mark.parametrize(
    ("result", "what"),
    [(None, "returned NoneType"), ("x", "returned str"), (np.ones((2, 3), complex), "returned complex128 values")],
)
def test_callable_init_returning_no_numbers_is_refused(result, what):
    with pytest.raises(TypeError, match=rf"^initialiser <lambda> {what}"):
        Dense(2, 3, init=lambda b, s, fi, fo, dt: result)


def test_callable_init_result_is_cast_to_the_model_dtype(backend):
    with build_on(backend, "float32"):
        d = Dense(2, 3, init=lambda b, s, fi, fo, dt: np.ones(s, np.int64))
    assert d.weight.data.dtype == backend.dtype("float32") and d.weight.shape == (2, 3)


@pytest.mark.parametrize("fan", [float("nan"), 2.5, None, "2", True])
def test_fans_must_be_ints(fan):
    with pytest.raises(TypeError, match=r"^initialiser 'kaiming_normal': fans must be positive ints, got "):
        initialize("kaiming_normal", get_backend("cpu"), (2, 2), fan, 2, "float32")
    with pytest.raises(TypeError, match=r"^initialiser <lambda>: fans must be positive ints"):
        initialize(lambda b, s, fi, fo, dt: np.zeros(s), get_backend("cpu"), (2, 2), 2, fan, "float32")


def test_numpy_int_fans_are_accepted():
    assert initialize("kaiming_normal", get_backend("cpu"), (2, 2), np.int64(2), 2, "float32").shape == (2, 2)


# -- 6, 7. Sequential.append and summary ---------------------------------------------------------


def test_append_refuses_a_non_module():
    model = Sequential(Dense(2, 2))
    with pytest.raises(TypeError, match=r"^Sequential\.append: the layer is a str, not a Module \(pass a layer"):
        model.append("relu")
    assert len(model) == 1


def test_summary_accepts_an_int_as_a_one_tuple():
    model = Sequential(Flatten(), Dense(784, 10))
    assert model.summary(784) == model.summary((784,)) == model.summary([784])


@pytest.mark.parametrize(
    ("shape", "error", "message"),
    [
        ((-1, 28, 28), ValueError, r"input_shape must hold positive sizes, got \(-1, 28, 28\)"),
        ((0, 784), ValueError, r"input_shape must hold positive sizes"),
        ("784", TypeError, r"input_shape must be a tuple of ints per sample, without the batch axis, .*got '784'"),
        ((28.0, 28), TypeError, r"input_shape must be a tuple of ints"),
        (None, TypeError, r"input_shape must be a tuple of ints"),
    ],
)
def test_summary_checks_the_input_shape(shape, error, message):
    model = Sequential(Flatten(), Dense(784, 10))
    with pytest.raises(error, match=rf"^Sequential\.summary: {message}"):
        model.summary(shape)
    assert model.training  # the mode is left as it was


# -- 9. Parameter ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, r"data must be an array \(e\.g\. backend\.asarray\(\.\.\.\)\), got NoneType"),
        ([1.0, 2.0], r"data must be an array .*got list"),
        (np.arange(3), r"data must be floating-point \(float32 or float64\), got int64"),
    ],
)
def test_parameter_refuses_non_float_arrays(data, message):
    with pytest.raises(TypeError, match=rf"^Parameter 'w': {message}$"):
        Parameter(data, "w")


def test_parameter_refuses_integer_arrays_on_strict():
    b = get_backend("strict")
    with pytest.raises(TypeError, match=r"^Parameter: data must be floating-point .*got int64$"):
        Parameter(b.asarray(np.arange(3)))


# -- 10, 11. argument names and train(mode) -----------------------------------------------------


def test_accepted_arguments_lists_the_constructor_keywords():
    assert accepted_arguments(LeakyReLU) == ["alpha"]
    assert accepted_arguments(ReLU) == []


@pytest.mark.parametrize("mode", ["eval", 0, None])
def test_train_mode_must_be_a_bool(mode):
    model = _mlp("cpu")
    with pytest.raises(TypeError, match=r"^Sequential\.train: mode must be True or False, got "):
        model.train(mode)
    assert all(m.training is True for m in model.modules())


def test_train_false_and_eval_set_every_module():
    model = _mlp("cpu")
    model.train(False)
    assert all(m.training is False for m in model.modules())
    model.train(np.True_)
    assert all(m.training is True for m in model.modules())


def test_get_activation_names_unknown_arguments():
    from xnet.nn.activations import get_activation

    with pytest.raises(TypeError, match="activation 'relu': unknown argument.*'alpha'.*accepted: none"):
        get_activation("relu", alpha=0.1)
    assert get_activation("leaky_relu", alpha=0.2).alpha == pytest.approx(0.2)
