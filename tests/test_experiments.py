"""Every shipped experiment file parses and builds its model; every study has its results page."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from xnet.backends import get_backend
from xnet.config import RunConfig, config_dict_from_toml, validate
from xnet.nn.module import build_on
from xnet.runs.build import build_loss, build_model, build_optimizer
from xnet.study.file import TOP_LEVEL_KEYS, load_study

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
FILES = sorted(EXPERIMENTS.glob("*.toml"))
STUDIES = [p for p in FILES if set(tomllib.loads(p.read_text())) <= set(TOP_LEVEL_KEYS)]
RECIPES = [p for p in FILES if p not in STUDIES]
# Ports of another framework's own example keep its settings (pytorch/examples trains on the whole
# training set): nothing in them was selected, so they need no validation split.
PORTS = {"pytorch-mnist"}

SHAPES = {"mnist": ((1, 28, 28), 10, "classification"), "sine": ((1,), 1, "regression")}


def _build(cfg: RunConfig) -> int:
    """Build model, loss and optimizer as `xnet train` would; run a forward pass; return #params."""
    input_shape, outputs, task = SHAPES[cfg.dataset]
    backend = get_backend("cpu", seed=0)
    with build_on(backend, cfg.dtype):
        model = build_model(cfg, input_shape, outputs)
        build_loss(cfg, task)
    build_optimizer(cfg, model)
    model.eval()
    out = model.forward(backend.asarray(np.zeros((2, *input_shape), dtype=np.float32), cfg.dtype))
    assert tuple(out.shape) == (2, outputs)
    return model.num_parameters()


def test_the_promised_files_are_shipped():
    names = {p.stem for p in FILES}
    for name in ("depth", "loss", "activations", "gradient-descent", "optimizers", "regularization",
                 "dropout", "initialization", "schedules", "cnn", "regression",
                 "best-mlp", "best-cnn", "fast-cnn", "speedrun"):  # fmt: skip
        assert name in names, name


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_study_parses_and_builds_every_variant(path):
    study = load_study(path)
    assert study.name == path.stem and study.description
    assert len(study.variants) >= 2
    sizes = {v.name: _build(v.config) for v in study.variants}
    assert all(n > 0 for n in sizes.values())
    if path.stem == "depth":
        assert sizes["1 hidden (256)"] == 784 * 256 + 256 + 2570


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_parses_and_builds(path):
    cfg = validate(RunConfig(**config_dict_from_toml(path)))
    assert _build(cfg) > 0
    assert cfg.val_split > 0 or path.stem in PORTS, "recipes select settings on a validation split, not on the test set"
    if path.stem == "best-mlp":
        assert cfg.model == "mlp" and not cfg.augment


@pytest.mark.parametrize("path", STUDIES + RECIPES, ids=lambda p: p.stem)
def test_results_page_exists_and_its_images_too(path):
    page = EXPERIMENTS / "results" / f"{path.stem}.md"
    assert page.is_file(), f"run the experiment and commit {page.name}"
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text())
    if path in STUDIES:
        assert images, f"{page.name} shows no curves"
    for image in images:
        assert (page.parent / image).is_file(), image
