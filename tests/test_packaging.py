"""What pyproject.toml ships and declares: py.typed in the package, every third-party module xnet imports."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_py_typed_is_in_the_package_and_its_package_data():
    assert (ROOT / "xnet" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["xnet"]


# import name -> distribution name, where they differ
DISTRIBUTION = {"PIL": "pillow", "cupy": "cupy-cuda", "array_api_compat": "array-api-compat",
                "array_api_strict": "array-api-strict"}  # fmt: skip


def _names(requirements: list[str]) -> set[str]:
    return {r.split(">")[0].split("=")[0].split("[")[0].strip() for r in requirements}


def test_every_third_party_module_xnet_imports_is_declared():
    """A module imported directly (rich, say) is a dependency of its own, not something another one brings."""
    core = _names(PYPROJECT["project"]["dependencies"])
    extras = set().union(*(_names(v) for v in PYPROJECT["project"]["optional-dependencies"].values()))
    imported = set()
    for path in (ROOT / "xnet").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m != "xnet" and m not in sys.stdlib_module_names}
    assert {"numpy", "rich", "typer"} <= third_party  # the scan sees imports (also those inside functions)
    for module in sorted(third_party):
        dist = DISTRIBUTION.get(module, module)
        declared = {d for d in core | extras if d.startswith(dist)}
        assert declared, f"xnet imports {module} but pyproject.toml declares no {dist}"
    assert "rich" in core  # imported by the CLI and the progress display, which every install has
