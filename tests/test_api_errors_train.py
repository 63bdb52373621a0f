"""Python-API mistakes in losses, optimizers, schedules, the Trainer and the data loader: clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.data import DataLoader, load_dataset, make_sine
from xnet.losses import MSE, BinaryCrossEntropy, CrossEntropy, SoftmaxMSE, get_loss
from xnet.nn import Dense, Sequential, build_on
from xnet.nn.parameter import Parameter
from xnet.optim import (
    L2,
    SGD,
    Adam,
    ConstantSchedule,
    CosineSchedule,
    CyclicSchedule,
    ExponentialSchedule,
    StepSchedule,
    WarmupSchedule,
    clip_grad_norm,
    get_optimizer,
    grad_norm,
)
from xnet.train import EarlyStopping, Trainer


def data(n: int = 24, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype(np.float32), (np.arange(n) % k).astype(np.int64)


def model(backend, outputs: int = 3) -> Sequential:
    with build_on(backend, "float32"):
        backend.rng.seed(0)
        return Sequential(Dense(4, outputs))


def trainer(backend, loss_cls=CrossEntropy, outputs: int = 3, optimizer: bool = True, **kw) -> Trainer:
    m = model(backend, outputs)
    with build_on(backend, "float32"):
        loss = loss_cls()
    opt = SGD(m.parameters(), lr=0.1) if optimizer else None
    return Trainer(m, loss, opt, backend=backend, **kw)


def loss_on(backend, cls, **kw):
    with build_on(backend, "float32"):
        return cls(**kw)


# -- 1. target ranges: per call behind check_labels, once per data set in the Trainer -------------


@pytest.mark.parametrize("bad", [2.0, -1.0, np.nan])
def test_bce_refuses_targets_outside_0_1(backend, bad):
    loss = loss_on(backend, BinaryCrossEntropy)
    z = backend.zeros((4, 1), "float32")
    with pytest.raises(ValueError, match=r"BinaryCrossEntropy\(\): targets must lie in \[0, 1\]"):
        loss(z, backend.asarray(np.array([0.0, 1.0, bad, 0.0], np.float32)))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\]"):
        loss(z, backend.asarray(np.array([0, 1, 2, 0])))  # integer labels of a multi-class set
    loss.check_labels = False  # a trainer validated its data once: no per-call check (and no sync)
    assert loss(z, backend.asarray(np.array([0, 1, 2, 0]))) is not None


@pytest.mark.parametrize("cls", [CrossEntropy, SoftmaxMSE])
@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_class_losses_refuse_negative_or_non_finite_soft_targets(backend, cls, bad):
    loss = loss_on(backend, cls)
    soft = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    soft[1, 1] = bad
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        loss(backend.zeros((4, 3), "float32"), backend.asarray(soft))
    ok = np.full((4, 3), 1 / 3, np.float32)
    assert np.isfinite(backend.item(loss(backend.zeros((4, 3), "float32"), backend.asarray(ok))))


def test_trainer_refuses_bce_on_multiclass_labels_and_turns_the_check_off_after(backend):
    x, y = data(k=10)
    t = trainer(backend, BinaryCrossEntropy, outputs=1)
    with pytest.raises(ValueError, match=r"Trainer: BinaryCrossEntropy\(\): targets must lie in \[0, 1\].* 0 to 9"):
        t.fit((x, y), epochs=1)
    assert t.epoch == 0
    t.fit((x, y % 2), epochs=1)
    assert t.loss.check_labels is False  # validated once: the steps skip the check


def test_trainer_refuses_negative_soft_targets_once(backend):
    x, y = data()
    t = trainer(backend, optimizer=False)
    with pytest.raises(ValueError, match=r"Trainer: CrossEntropy\(\): float targets .* finite and >= 0"):
        t.evaluate((x, -np.eye(3, dtype=np.float32)[y]))
    result = t.evaluate((x, np.eye(3, dtype=np.float32)[y]))
    assert np.isfinite(result.loss) and t.loss.check_labels is False


def test_one_hot_targets_train_and_report_accuracy_as_labels_do(backend):
    x, y = data()
    by_labels = trainer(backend, seed=0).fit((x, y), epochs=2, batch_size=8)
    by_one_hot = trainer(backend, seed=0).fit((x, np.eye(3, dtype=np.float32)[y]), epochs=2, batch_size=8)
    for a, b in zip(by_labels, by_one_hot, strict=True):
        assert b["train_accuracy"] == a["train_accuracy"]
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
    t = trainer(backend, BinaryCrossEntropy, outputs=1)
    record = t.fit((x, (y % 2).astype(np.float32)[:, None]), epochs=1)[-1]  # (N, 1) float targets
    assert 0 <= record["train_accuracy"] <= 1
    assert t.evaluate((x, (y % 2)[:, None].astype(np.float32))).confusion.shape == (2, 2)


@pytest.mark.parametrize(("shift", "lo", "hi"), [(-1, -1, 1), (1, 1, 3)])
def test_trainer_label_message_names_trainer_and_the_bound(backend, shift, lo, hi):
    x, y = data()
    with pytest.raises(ValueError) as e:
        trainer(backend).fit((x, y + shift), epochs=1)
    assert str(e.value) == (
        f"Trainer: labels must lie in [0, 3) for CrossEntropy() with 3 classes, the data has labels from {lo} to {hi}"
    )


# -- 2. Optimizer.load_state_dict is atomic ------------------------------------------------------------


def _stepped_adam(backend) -> tuple[Adam, list[Parameter]]:
    p = [Parameter(backend.asarray(np.ones((2, 3), np.float32)), "weight")]
    opt = Adam(p, lr=0.01)
    p[0].grad = backend.asarray(np.full((2, 3), 0.5, np.float32))
    opt.step()
    return opt, p


@pytest.mark.parametrize(
    ("edit", "error", "fragment"),
    [
        ({"lr": -1.0, "t": 99}, ValueError, "lr must be a finite number >= 0"),
        ({"t": -3}, ValueError, "t (steps taken) must be an int >= 0"),
        ({"t": "5"}, TypeError, "t (steps taken) must be an int"),
        ({"groups": [{"lr_scale": -2.0}]}, ValueError, "lr_scale must be a finite number >= 0"),
        ({"groups": [{"beta1": 5.0}], "t": 99}, ValueError, "beta1 must be in [0, 1)"),
        ({"groups": [{"decay_all": "no"}]}, TypeError, "decay_all must be True or False"),
        ({"state": [{"m": np.array([["a"] * 3] * 2)}]}, ValueError, "expected numbers"),
    ],
)
def test_load_state_dict_failure_changes_nothing(backend, edit, error, fragment):
    opt, _ = _stepped_adam(backend)
    before = opt.state_dict()
    state = {**opt.state_dict(), **edit}
    with pytest.raises(error) as e:
        opt.load_state_dict(state)
    assert "Adam.load_state_dict" in str(e.value) and fragment in str(e.value)
    after = opt.state_dict()
    assert (after["t"], after["lr"], after["groups"]) == (before["t"], before["lr"], before["groups"])
    np.testing.assert_array_equal(after["state"][0]["m"], before["state"][0]["m"])


def test_load_state_dict_missing_key_or_not_a_dict(backend):
    opt, _ = _stepped_adam(backend)
    state = opt.state_dict()
    del state["t"]
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: state lacks key\(s\) \['t'\]"):
        opt.load_state_dict(state)
    with pytest.raises(TypeError, match="Adam.load_state_dict: expected the dict that state_dict.. returns, got None"):
        opt.load_state_dict(None)
    assert opt.t == 1


# -- 3, 4. Trainer parts and fit/evaluate data -------------------------------------------------------------


def test_trainer_refuses_an_optimizer_over_another_models_parameters(backend):
    m, other = model(backend), model(backend)
    with build_on(backend, "float32"):
        loss = CrossEntropy()
    with pytest.raises(ValueError, match=r"Trainer: the optimizer updates 2 parameter\(s\) that are not the model's"):
        Trainer(m, loss, Adam(other.parameters()), backend=backend)
    # a subset of the model's own parameters (a frozen layer) is fine
    Trainer(m, loss, Adam(m.parameters()[:1]), backend=backend)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "fragment"),
    [
        ((None, "loss", None), {}, TypeError, "Trainer: model must be an xnet Module"),
        (("model", "ce", None), {}, TypeError, "get_loss('ce')"),
        (("model", "loss", "adam"), {}, TypeError, "Trainer: optimizer must be an xnet Optimizer"),
        (("model", "loss", None), {"schedule": 0.1}, TypeError, "Trainer: schedule must be a Schedule"),
        (("model", "loss", None), {"early_stopping": 3}, TypeError, "early_stopping must be an EarlyStopping"),
        (("model", "loss", None), {"seed": "1"}, TypeError, "Trainer: seed must be an int"),
    ],
)
def test_trainer_constructor_names_the_bad_part(args, kwargs, error, fragment):
    parts = {"model": Sequential(Dense(2, 2)), "loss": CrossEntropy()}
    with pytest.raises(error) as e:
        Trainer(*[parts.get(a, a) if isinstance(a, str) and a in parts else a for a in args], **kwargs)
    assert fragment in str(e.value)


def test_evaluate_only_trainer_works_but_fit_needs_an_optimizer(backend):
    x, y = data()
    t = trainer(backend, optimizer=False)
    assert t.evaluate((x, y)).accuracy is not None
    with pytest.raises(ValueError, match="Trainer.fit needs an optimizer"):
        t.fit((x, y), epochs=1)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda x, y: "mnist", "got str 'mnist'"),
        (lambda x, y: load_dataset("sine", n_train=8, n_test=2), "got a Dataset; pass one of its splits"),
        (lambda x, y: x, "got an array of shape (24, 4); pass inputs and targets together as (x, y)"),
        (lambda x, y: (x, y, y), "got a tuple of 3 items"),
    ],
)
def test_fit_says_what_it_takes(backend, make, fragment):
    x, y = data()
    with pytest.raises(TypeError) as e:
        trainer(backend).fit(make(x, y), epochs=1)
    assert "Trainer.fit: train must be an (x, y) pair of arrays, a Split or a DataLoader" in str(e.value)
    assert fragment in str(e.value)


def test_zero_samples_are_named_before_training(backend):
    x, y = data()
    t = trainer(backend)
    with pytest.raises(ValueError, match=r"Trainer.fit: train holds no samples \(x has shape \(0, 4\)\)"):
        t.fit((x[:0], y[:0]), epochs=1)
    with pytest.raises(ValueError, match="Trainer.fit: val holds no samples"):
        t.fit((x, y), epochs=1, val=(x[:0], y[:0]))
    assert t.epoch == 0  # the empty validation set is found before the first epoch, not after it
    with pytest.raises(ValueError, match="Trainer.evaluate: data holds no samples"):
        t.evaluate((x[:0], y[:0]))
    with pytest.raises(ValueError, match="Trainer.evaluate: data has no targets"):
        t.evaluate((x, None))


# -- 5. bools are bools, ints are ints, data are real numbers ------------------------------------------------


def test_optimizer_flags_must_be_bools(backend):
    p = model(backend).parameters()
    with pytest.raises(TypeError, match="SGD: nesterov must be True or False, got 'no'"):
        SGD(p, lr=0.1, momentum=0.9, nesterov="no")
    with pytest.raises(TypeError, match="Adam: bias_correction must be True or False, got 0"):
        Adam(p, bias_correction=0)
    with pytest.raises(TypeError, match="Adam: decay_all must be True or False"):
        Adam([{"params": p, "decay_all": "yes"}])
    with pytest.raises(TypeError, match="L2: include_all must be True or False"):
        L2(0.1, include_all="no")
    assert SGD(p, lr=0.1, momentum=0.9, nesterov=np.bool_(True)).param_groups[0]["nesterov"] is True


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "fragment"),
    [
        (np.zeros((4, 2), np.float32), {"shuffle": "no"}, TypeError, "shuffle must be True or False, got 'no'"),
        (np.zeros((4, 2), np.float32), {"seed": "a"}, TypeError, "seed must be an int, got 'a'"),
        (np.zeros((4, 2), np.float32), {"seed": 1.5}, TypeError, "seed must be an int, got 1.5"),
        (np.zeros((4, 2), np.float32), {"dtype": "int64"}, ValueError, "dtype must be 'float32' or 'float64'"),
        (np.zeros((4, 2), np.float32), {"augment": 3}, TypeError, "augment must be a callable"),
        (np.array([None] * 10), {}, TypeError, "x must hold real numbers (bool, int or float), got dtype object"),
        (np.ones(10, complex), {}, TypeError, "x must hold real numbers (bool, int or float), got dtype complex128"),
        (np.array(["a"] * 4), {}, TypeError, "x must hold real numbers (bool, int or float), got dtype <U1"),
        (np.float32(1.0), {}, ValueError, "x must be an array of samples (N, ...), got a 0-d"),
    ],
)
def test_data_loader_arguments(x, kwargs, error, fragment):
    with pytest.raises(error) as e:
        DataLoader(x, None, 2, "cpu", **kwargs)
    assert str(e.value).startswith("DataLoader: ") and fragment in str(e.value)


def test_data_loader_refuses_string_targets_and_takes_lists(backend):
    with pytest.raises(TypeError, match="DataLoader: y must hold real numbers"):
        DataLoader(np.zeros((2, 2), np.float32), np.array(["a", "b"]), 2, backend)
    loader = DataLoader([[1.0, 2.0], [3.0, 4.0]], [0, 1], 2, backend, shuffle=False)
    xb, yb = next(iter(loader))
    np.testing.assert_array_equal(backend.to_numpy(xb), [[1, 2], [3, 4]])
    assert "int" in str(yb.dtype)


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"flatten": "no"}, TypeError, "load_dataset: flatten must be True or False, got 'no'"),
        ({"seed": "x"}, TypeError, "load_dataset: seed must be an int >= 0, got 'x'"),
        ({"seed": -1}, ValueError, "load_dataset: seed must be an int >= 0, got -1"),
        ({"noise": "a"}, ValueError, "sine: noise must be a number, got 'a'"),
        ({"a": float("nan")}, ValueError, "sine: a must be finite"),
    ],
)
def test_load_dataset_arguments(kwargs, error, fragment):
    with pytest.raises(error) as e:
        load_dataset("sine", n_train=8, n_test=2, **kwargs)
    assert fragment in str(e.value)


def test_make_sine_arguments():
    with pytest.raises(TypeError, match="sine: low must be a number"):
        make_sine(4, 2, low="0")
    with pytest.raises(TypeError, match="sine: seed must be an int"):
        make_sine(4, 2, seed="s")


# -- 6. schedules ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "fragment"),
    [
        (lambda: CosineSchedule(0.1, 10, floor=1.0), ValueError, "CosineSchedule: floor (the final lr) must be <="),
        (lambda: CyclicSchedule(0.1, 2, base_lr=1.0), ValueError, "CyclicSchedule: base_lr (the lowest lr) must"),
        (lambda: ExponentialSchedule(0.1, 1.5).lr_at(2000), ValueError, "ExponentialSchedule: the lr overflows"),
        (lambda: StepSchedule(0.1, 1, gamma=2.0).lr_at(5000), ValueError, "StepSchedule: the lr overflows"),
        (lambda: WarmupSchedule(0.1, 5), TypeError, "WarmupSchedule: inner must be a Schedule"),
        (lambda: ConstantSchedule(0.1).lr_at(None), TypeError, "ConstantSchedule.lr_at: step must be an int >= 0"),
        (lambda: ConstantSchedule(0.1).lr_at("3"), TypeError, "ConstantSchedule.lr_at: step must be an int >= 0"),
        (lambda: ConstantSchedule(0.1).lr_at(True), TypeError, "step must be an int >= 0, got True"),
        (lambda: ConstantSchedule(0.1).lr_at(-1), ValueError, "step must be >= 0, got -1"),
        (lambda: StepSchedule(0.1, milestones="5"), TypeError, "StepSchedule: milestones must be a list"),
    ],
)
def test_schedule_errors(make, error, fragment):
    with pytest.raises(error) as e:
        make()
    assert fragment in str(e.value)


def test_schedules_accept_what_they_should():
    assert StepSchedule(0.1, milestones=5).values(7) == pytest.approx([0.1] * 5 + [0.01] * 2)
    assert ConstantSchedule(0.1).lr_at(np.int64(3)) == 0.1
    assert CosineSchedule(0.1, 10, floor=0.1).lr_at(5) == pytest.approx(0.1)
    assert WarmupSchedule(ConstantSchedule(0.1), 2).lr_at(0) == pytest.approx(0.05)


# -- 7, 8. clipping and optimizer / factory arguments -----------------------------------------------------------


def test_grad_norm_takes_any_iterable_of_parameters(backend):
    params = model(backend).parameters()
    for p in params:
        p.grad = p.grad * 0 + 1
    expected = np.sqrt(sum(p.size for p in params))
    assert backend.item(grad_norm(p for p in params)) == pytest.approx(expected, rel=1e-6)
    assert backend.item(clip_grad_norm(iter(params), 1.0)) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(TypeError, match=r"grad_norm: params must be Parameters \(with .grad\), got ndarray"):
        grad_norm([np.zeros(3)])
    with pytest.raises(TypeError, match="grad_norm: params must be a list of Parameters"):
        grad_norm(3)


def test_optimizer_constructor_errors_name_the_optimizer(backend):
    m = model(backend)
    with pytest.raises(TypeError, match=r"Adam: params .* got the method .*did you mean model.parameters\(\)\?"):
        Adam(m.parameters)
    with pytest.raises(TypeError, match=r"Adam: params .* got the model Sequential itself; did you mean"):
        Adam(m)
    with pytest.raises(TypeError, match="Adam: params must be an iterable of Parameters .* got NoneType"):
        Adam(None)
    with pytest.raises(TypeError, match=r"Adam: betas must be a pair \(beta1, beta2\), got 0.9"):
        Adam(m.parameters(), betas=0.9)
    with pytest.raises(TypeError, match=r"SGD: regularizers must be a list of L1/L2 objects .* got 'l2'"):
        SGD(m.parameters(), 0.1, regularizers="l2")
    opt = Adam(m.parameters(), regularizers=L2(1e-4))  # one regulariser is taken as [it]
    assert [type(r) for r in opt.regularizers] == [L2]


def test_factories_name_the_accepted_options(backend):
    with pytest.raises(TypeError, match=r"get_loss\('mse'\): unknown option\(s\) \['label_smoothing'\]; MSE accepts"):
        get_loss("mse", label_smoothing=0.1)
    with pytest.raises(TypeError, match=r"get_loss\('bce'\): unknown option\(s\) \['x'\]"):
        get_loss("bce", x=1)
    assert get_loss("ce", label_smoothing=0.1).label_smoothing == 0.1
    with pytest.raises(TypeError, match=r"get_optimizer\('adam'\): unknown option\(s\) \['momentum'\]; Adam accepts"):
        get_optimizer("adam", model(backend).parameters(), momentum=0.9)


# -- 9. target kinds ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [CrossEntropy, SoftmaxMSE, MSE])
def test_integer_one_hot_targets_say_they_must_be_float(backend, cls):
    loss = loss_on(backend, cls)
    with pytest.raises(ValueError) as e:
        loss(backend.zeros((2, 3), "float32"), backend.asarray(np.array([[1, 0, 0], [0, 1, 0]])))
    assert "(N, K) targets must be float (one-hot or soft probabilities)" in str(e.value)
    assert "integer targets are class labels of shape (2,)" in str(e.value)


def test_bce_refuses_string_targets():
    with pytest.raises(TypeError, match=r"BinaryCrossEntropy\(\): targets must be numbers in \[0, 1\], got dtype <U1"):
        BinaryCrossEntropy()(np.zeros((4, 1), np.float32), ["a", "b", "c", "d"])


# -- 10. early stopping ------------------------------------------------------------------------------------------


def test_early_stopping_arguments():
    with pytest.raises(TypeError, match="EarlyStopping: patience must be an int >= 1, got '3'"):
        EarlyStopping(patience="3")
    with pytest.raises(ValueError, match="EarlyStopping: monitor must be one of val_loss, .*; got 'val_los'"):
        EarlyStopping(monitor="val_los")
    with pytest.raises(ValueError, match="EarlyStopping: min_delta must be a finite number >= 0"):
        EarlyStopping(min_delta=-1.0)


def test_fit_checks_the_monitored_metric_before_training(backend):
    x, y = data()
    t = trainer(backend, early_stopping=EarlyStopping("test_loss"))
    with pytest.raises(ValueError, match=r"monitors 'test_loss', but fit\(\) was given no test data"):
        t.fit((x, y), epochs=1)
    r = trainer(backend, MSE, outputs=1, early_stopping=EarlyStopping("val_accuracy"))
    sine = (x, x[:, :1])
    with pytest.raises(ValueError, match="monitors 'val_accuracy', but MSE on these targets is no classification"):
        r.fit(sine, epochs=1, val=sine)
    assert t.epoch == 0 and r.epoch == 0
