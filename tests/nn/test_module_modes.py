"""Module.evaluating(): evaluation mode inside the block, every module's own mode restored after it."""

from __future__ import annotations

import numpy as np
import pytest

from xnet.nn.dense import Dense
from xnet.nn.dropout import Dropout
from xnet.nn.module import build_on
from xnet.nn.sequential import Sequential


def _model(backend):
    with build_on(backend, "float64"):
        return Sequential([Dense(4, 8), Dropout(0.5), Dense(8, 2)])


def test_dropout_is_off_inside_and_each_module_keeps_its_mode_after(backend):
    model = _model(backend)
    model.train()
    model.layers[1].eval()  # a submodule left in evaluation mode on purpose stays so
    x = backend.asarray(np.ones((3, 4)), dtype=backend.xp.float64)
    with model.evaluating() as m:
        assert m is model and not any(mod.training for mod in model.modules())
        a, b = backend.to_numpy(model.forward(x)), backend.to_numpy(model.forward(x))
        np.testing.assert_array_equal(a, b)
    assert [mod.training for mod in model.modules()] == [True, True, False, True]


def test_the_modes_come_back_when_the_block_raises(backend):
    model = _model(backend)
    model.train()
    with pytest.raises(RuntimeError), model.evaluating():
        raise RuntimeError("inside")
    assert all(mod.training for mod in model.modules())
