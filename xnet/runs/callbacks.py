"""The callbacks a run names by import path (`--callbacks pkg.module:name`, `callbacks = [...]` in TOML)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from xnet.config.parsers import check_callback_spec
from xnet.errors import ConfigError
from xnet.train.callbacks import as_callbacks


def load_callback(spec: str) -> Any:
    """The callback `spec` names: a Callback class is built with no arguments; a callback object or a
    function(epoch, logs) is used as it is. A module looked up from the current folder too, as `python -m` does."""
    module_name, attr = check_callback_spec(spec).split(":")
    added = os.getcwd() not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # a missing module, or one that fails as it is imported
        raise ConfigError(f"callback {spec!r}: cannot import {module_name} ({type(e).__name__}: {e})") from None
    finally:
        if added:
            sys.path.remove(os.getcwd())
    if not hasattr(module, attr):
        raise ConfigError(f"callback {spec!r}: {module_name} has no {attr}")
    obj = getattr(module, attr)
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as e:
            why = f"{type(e).__name__}: {e}"
            raise ConfigError(f"callback {spec!r}: {attr}() fails without arguments ({why})") from None
    try:
        return as_callbacks([obj], f"callback {spec!r}")[0]
    except TypeError:
        raise ConfigError(
            f"callback {spec!r} is not callable: got {type(obj).__name__} {obj!r:.40}; name a Callback class, a "
            "callback object or a function(epoch, logs)"
        ) from None


def load_callbacks(specs: list[str]) -> list[Any]:
    """Every callback of a run's `callbacks` option, in order."""
    return [load_callback(spec) for spec in specs]
