"""Old import paths of modules that moved into packages keep working, with a DeprecationWarning naming the new one.

`import xnet.compare` (and `from xnet.compare import load_study`) give a module holding the names of
the modules listed for it below, so code written against an earlier layout runs unchanged. The old
files cannot stay behind as re-exporting stubs: version control would then see an edited file, not a
moved one. One finder on `sys.meta_path`, consulted only for the names below, is the whole mechanism.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

# old module -> the modules that now hold its names
MOVED: dict[str, tuple[str, ...]] = {
    "xnet.compare": ("xnet.study.file", "xnet.study.runner"),
    "xnet.options": ("xnet.config.options",),
    "xnet.study_summary": ("xnet.study.summary",),
    "xnet.study_plots": ("xnet.plots.study",),
    "xnet.images": ("xnet.data.images",),
    "xnet.train.run": ("xnet.runs.run", "xnet.runs.folder", "xnet.runs.data"),
    "xnet.train.build": ("xnet.runs.build",),
    "xnet.train.restore": ("xnet.runs.restore",),
    "xnet.parallel.study": ("xnet.study.mpi",),
}


class _MovedLoader(importlib.abc.Loader):
    """Fills the old module with the names of the new ones (the same objects, not copies)."""

    def exec_module(self, module: ModuleType) -> None:
        new = MOVED[module.__name__]
        warnings.warn(
            f"{module.__name__} moved to {' and '.join(new)}; import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        for name in new:
            target = importlib.import_module(name)
            module.__dict__.update({k: v for k, v in vars(target).items() if not k.startswith("__")})


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _MovedLoader())


def install() -> None:
    """Put the finder first on sys.meta_path, once: it answers only for the old names (whose files are gone;
    an installed copy of an older xnet elsewhere on the path must not answer for them)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
