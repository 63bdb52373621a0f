"""Atomic file writes: a temporary file beside the target, renamed over it when complete.

A reader sees the old file or the new one, never half of one, and a failed write leaves
nothing behind. The file is synced before the rename and its folder after it, so a power cut
leaves the old file or the whole new one. Errors name the target, not the temporary file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


def _default_mode() -> int:
    """0o666 less the process umask: the mode `open()` would give a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def ensure_folder(folder: str | Path) -> Path:
    """Create `folder` and its parents if missing; a clear error when a file stands in the way."""
    folder = Path(folder)
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(part))
            break
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically, with the permissions a plain open() would give."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
    ensure_folder(path.parent)
    tmp = None
    try:
        # mkstemp creates the file 0600; chmod gives the usual umask-based mode, as open() would
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _default_mode())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        # the temporary file's name means nothing to the user: report the target
        raise type(e)(e.errno, e.strerror or str(e), str(path)) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable: a power cut after it could otherwise lose the new directory entry (POSIX).

    Skipped where a folder cannot be opened or synced (Windows, some network file systems): the
    rename has happened either way, it is only not yet forced to disk."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Atomic text write (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))
