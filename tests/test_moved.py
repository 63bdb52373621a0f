"""Modules that moved into packages still import from their old paths, with a warning naming the new place."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from xnet._moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_gives_the_new_modules_objects_and_names_where_they_went(old):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to {MOVED[old][0]}"):
        module = importlib.import_module(old)
    for new in MOVED[old]:
        target = importlib.import_module(new)
        public = [k for k in vars(target) if not k.startswith("_")]
        assert public
        assert all(getattr(module, k) is getattr(target, k) for k in public)


def test_from_imports_of_old_paths_work_in_a_fresh_interpreter():
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "try:\n"
        "    from xnet.compare import load_study\n"
        "except DeprecationWarning as e:\n"
        "    print(e)\n"
        "warnings.simplefilter('ignore')\n"
        "from xnet.compare import load_study\n"
        "from xnet.train import run\n"
        "from xnet.options import option_keys\n"
        "import xnet.study.file, xnet.runs.run\n"
        "assert load_study is xnet.study.file.load_study and run.run_training is xnet.runs.run.run_training\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "xnet.compare moved to xnet.study.file and xnet.study.runner; import it from there"


def test_an_unknown_module_is_still_missing():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("xnet.no_such_module")
