"""Download files from a list of mirrors into a folder, md5-verified and written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from xnet.errors import DataError

USER_AGENT = "xnet/0.1 (dataset download)"
_CHUNK = 1 << 16


class _Mismatch(Exception):
    """A downloaded file's md5 differs from the expected one."""


class DownloadFailed(DataError):
    """Some files could not be fetched from any mirror; `failed` names them, `reasons` says why."""

    def __init__(self, what: str, failed: list[str], reasons: list[str]):
        self.failed = failed
        self.reasons = reasons
        super().__init__(f"{what}: could not download {', '.join(failed)} ({'; '.join(reasons)})")


def mirror_list(mirrors: Sequence[str] | str | None, default: Sequence[str], env: str) -> list[str]:
    """The mirrors to try: the argument, else $env (comma/space separated; empty = none), else default."""
    if mirrors is None:
        value = os.environ.get(env)
        mirrors = list(default) if value is None else value
    if isinstance(mirrors, str):
        mirrors = re.split(r"[,\s]+", mirrors)
    return [m if m.endswith("/") else m + "/" for m in (s.strip() for s in mirrors) if m]


def _reason(e: BaseException, timeout: float) -> str:
    """A short human reason for a failed request."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    inner = e.reason if isinstance(e, urllib.error.URLError) else e
    if isinstance(inner, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:g} s"
    if isinstance(inner, ConnectionRefusedError):
        return "connection refused"
    if isinstance(inner, socket.gaierror):
        return "host not found (no network?)"
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    return str(inner) or type(inner).__name__


@contextlib.contextmanager
def _progress_bar(enabled: bool) -> Iterator[Any]:
    """A rich progress bar on stderr, or None when disabled or rich is missing."""
    if not enabled:
        yield None
        return
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
    except ImportError:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        yield bar


def fetch(url: str, target: Path, md5: str, timeout: float, bar: Any = None) -> None:
    """Download `url` to `target` atomically (temp file + os.replace) if its md5 is `md5`."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        task = bar.add_task(target.name, total=resp.length) if bar is not None else None
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            h = hashlib.md5()
            with os.fdopen(fd, "wb") as f:
                while chunk := resp.read(_CHUNK):
                    f.write(chunk)
                    h.update(chunk)
                    if task is not None:
                        bar.advance(task, len(chunk))
            if h.hexdigest() != md5:
                raise _Mismatch(h.hexdigest())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def download_files(
    files: dict[str, str],
    dest: Path,
    mirrors: Sequence[str],
    *,
    timeout: float = 30.0,
    progress: bool = False,
    what: str = "data",
) -> dict[str, str]:
    """Fetch each {file name: md5} from the first mirror that serves it intact, into `dest`.

    A file whose md5 differs is rejected (never written) and the next mirror is tried; a mirror
    that cannot be reached is not asked again. Returns {file name: mirror used}; raises
    DownloadFailed (a DataError) naming the files that no mirror supplied and why.
    """
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadFailed(what, list(files), [f"cannot create {dest}: {e.strerror}"]) from None
    used: dict[str, str] = {}
    unreachable: dict[str, str] = {}  # mirror -> reason
    problems: list[str] = []
    with _progress_bar(progress) as bar:
        for name, md5 in files.items():
            for mirror in mirrors:
                if mirror in unreachable:
                    continue
                url = mirror + name
                try:
                    fetch(url, dest / name, md5, timeout, bar)
                except _Mismatch as e:
                    problems.append(
                        f"{url}: md5 mismatch (got {e}, expected {md5}), file rejected, not cached"
                    )
                except urllib.error.HTTPError as e:
                    problems.append(f"{url}: {_reason(e, timeout)}")
                except (urllib.error.URLError, OSError, ValueError) as e:
                    # ValueError: a malformed mirror URL
                    unreachable[mirror] = _reason(e, timeout)
                else:
                    used[name] = mirror
                    break
    failed = [n for n in files if n not in used]
    if failed:
        reasons = [f"{m}: {r}" for m, r in unreachable.items()] + problems
        raise DownloadFailed(what, failed, reasons)
    return used
