"""Whether xnet's compiled CPU kernels run here, and Numba imported (once) with its cache placed.

XNET_CPU_KERNELS=0 turns them all off; without Numba (not installed, or an import error on this
platform) the reference Array API bodies run and `xnet info` says why (reason()). Numba keeps
compiled kernels in __pycache__ beside this package when it can write there; a read-only install
gets NUMBA_CACHE_DIR = ~/.cache/xnet/numba (XDG_CACHE_HOME respected) unless the user set one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import ModuleType

_lock = threading.Lock()
_loaded: dict[str, object] = {}  # "kernels" -> the kernel namespace, "reason" -> why not


def _switched_off() -> bool:
    return os.environ.get("XNET_CPU_KERNELS", "").strip().lower() in ("0", "false", "no", "off")


def user_cache_dir() -> Path:
    """Where compiled kernels go when the package directory is read-only: ~/.cache/xnet/numba."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "xnet" / "numba"


def _place_cache() -> None:
    """Point NUMBA_CACHE_DIR at the user cache dir when Numba could not write beside this package."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return  # the user chose
    here = Path(__file__).parent
    pycache = here / "__pycache__"
    if os.access(pycache if pycache.is_dir() else here, os.W_OK):
        return
    target = user_cache_dir()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # Numba then caches in memory only: slower starts, same numbers
    os.environ["NUMBA_CACHE_DIR"] = str(target)


def kernels() -> ModuleType | None:
    """The kernel namespace (cpu_kernels.table), importing Numba on first call; None when off or missing."""
    if "kernels" in _loaded:
        return _loaded["kernels"]  # type: ignore[return-value]
    with _lock:
        if "kernels" not in _loaded:
            _loaded["kernels"], _loaded["reason"] = _load()
    return _loaded["kernels"]  # type: ignore[return-value]


def load_in_background() -> threading.Thread | None:
    """Start `kernels()` on a thread (the first real call waits for it); None when already decided or off."""
    if "kernels" in _loaded or _switched_off():
        return None
    # not a daemon: an interpreter that exits mid-import waits for it instead of freezing it half done
    thread = threading.Thread(target=_import_and_set_up, name="xnet-cpu-kernels-import")
    thread.start()
    return thread


def _import_and_set_up() -> None:
    """kernels(), then one small kernel checked: the first kernel loaded from the cache pays Numba's
    one-time set-up (about 125 ms here; the ones after it take 2-3 ms), which is then not on the run's path."""
    table = kernels()
    if table is not None:
        import numpy as np

        table.probes.ok("take_normalized", np.float32)  # a DataLoader of pixels calls it first anyway


def _load() -> tuple[ModuleType | None, str | None]:
    if _switched_off():
        return None, "turned off by XNET_CPU_KERNELS=0"
    _place_cache()
    try:
        import numba  # noqa: F401  (imported here, not at xnet's import: it costs 0.1-0.2 s)

        from xnet.backends.cpu_kernels import table
    except Exception as e:  # ImportError, or a Numba/llvmlite that does not load on this platform
        first = (str(e).strip().splitlines() or [""])[0]
        return None, f"numba unavailable ({e.__class__.__name__}: {first}); pip install numba"
    table.use_spin_wait()
    return table, None


def reason() -> str | None:
    """Why the compiled kernels do not run (None when they do); imports Numba to find out."""
    kernels()
    return _loaded.get("reason")  # type: ignore[return-value]


def describe() -> str:
    """One line for `xnet info`: 'numba 0.68.1, cache <dir>' or why the reference path runs."""
    why = reason()
    if why is not None:
        return f"off ({why}): the Array API reference runs"
    import numba

    where = os.environ.get("NUMBA_CACHE_DIR") or str(Path(__file__).parent / "__pycache__")
    return f"numba {numba.__version__} (cache {where})"


def reset() -> None:
    """Forget the decision (tests that change XNET_CPU_KERNELS)."""
    with _lock:
        _loaded.clear()
