"""`xnet info`: versions, BLAS, and every backend with available/unavailable and why."""

from __future__ import annotations

import io
import platform
import sys
from contextlib import redirect_stdout

import typer

from xnet.cli.app import app


def _blas_name() -> str:
    import numpy as np

    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older layouts of show_config: fall back to its printed text
        buf = io.StringIO()
        with redirect_stdout(buf):
            np.show_config()
        return "see numpy.show_config()" if buf.getvalue() else "unknown"


def info_lines() -> list[str]:
    """The lines `xnet info` prints."""
    import numpy as np

    import xnet
    from xnet.backends import available_backends

    lines = [
        f"xnet     {xnet.__version__}",
        f"python   {platform.python_version()} ({sys.executable})",
        f"numpy    {np.__version__} (BLAS: {_blas_name()})",
        "backends:",
    ]
    for status in available_backends():
        state = "available" if status.available else "unavailable"
        lines.append(f"  {status.spec:<7} {state:<12} {status.detail}")
    gpus = _gpu_lines()
    lines.append("GPUs:" if gpus else "GPUs:    none seen")
    lines += gpus
    return lines


def _gpu_lines() -> list[str]:
    from xnet.backends import BackendUnavailable
    from xnet.backends.cupy_backend import import_cupy

    try:
        cupy = import_cupy()
    except BackendUnavailable:
        return []
    out = []
    for i in range(cupy.cuda.runtime.getDeviceCount()):
        props = cupy.cuda.runtime.getDeviceProperties(i)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        out.append(f"  cuda:{i}  {name}, {props['totalGlobalMem'] / 2**30:.1f} GiB")
    return out


@app.command()
def info(
    device: str = typer.Option(
        None, help="Also check that this device (cpu, cuda, cuda:N, auto) can run; exit 2 if not."
    ),
) -> None:
    """Show versions, the BLAS in use, and which backends (cpu, strict, cuda) can run here."""
    print("\n".join(info_lines()))
    if device is not None:
        from xnet.backends import get_backend

        backend = get_backend(device)  # raises BackendUnavailable: one line, exit 2
        print(f"device {device!r}: {backend.name} on {backend.device_name}")
