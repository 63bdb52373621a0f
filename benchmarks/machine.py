"""A description of the machine a benchmark ran on: CPU, cores, NumPy and its BLAS, PyTorch, GPU."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from xnet.backends import cpu_threads


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def numpy_blas() -> str:
    """The BLAS NumPy was built with, e.g. 'scipy-openblas 0.3.29'."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # the layout of show_config is not a stable API
        return "unknown"


def openblas_kernels() -> str | None:
    """The kernel set NumPy's OpenBLAS runs (e.g. 'Haswell': AVX2, 'SkylakeX': AVX-512), with
    the OPENBLAS_CORETYPE that forced it, if any; None without OpenBLAS."""
    for path in cpu_threads.openblas_libraries():
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_corename64_", "openblas_get_corename64_", "openblas_get_corename"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                forced = os.environ.get("OPENBLAS_CORETYPE")
                return fn().decode() + (f", OPENBLAS_CORETYPE={forced}" if forced else "")
    return None


def torch_kernels(torch: Any) -> str | None:
    """The instruction set PyTorch's CPU kernels run (e.g. 'AVX512'), with any ATEN_CPU_CAPABILITY or
    ONEDNN_MAX_CPU_ISA that capped it; None without PyTorch. OPENBLAS_CORETYPE does not touch it."""
    if torch is None:
        return None
    try:
        isa = torch.backends.cpu.get_cpu_capability()
    except AttributeError:  # older PyTorch
        return None
    caps = [f"{k}={os.environ[k]}" for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if os.environ.get(k)]
    return ", ".join([isa, *caps])


def git_commit() -> str | None:
    """The short commit of the working tree (with '+dirty' when it has uncommitted changes)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "xnet"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def describe(device: str, torch: Any, gpu_name: str | None) -> dict[str, Any]:
    """JSON-able facts about this machine and the libraries the benchmark compares."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, Any] = {
        "device": device,
        "cpu": cpu_model(),
        "cores": cores,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": numpy_blas(),
        "blas_kernels": openblas_kernels(),
        "torch": getattr(torch, "__version__", None),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "torch_kernels": torch_kernels(torch),
        "git_commit": git_commit(),
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    if gpu_name:
        info["gpu"] = gpu_name
    return info


def one_line(info: dict[str, Any]) -> str:
    """The machine description as one line for the table header."""
    parts = [f"{info['cpu']}, {info['cores']} cores", f"Python {info['python']}",
             f"NumPy {info['numpy']} ({info['blas']}"
             + (f", kernels {info['blas_kernels']})" if info.get("blas_kernels") else ")")]
    if info["torch"]:
        kernels = f", kernels {info['torch_kernels']}" if info.get("torch_kernels") else ""
        parts.append(f"PyTorch {info['torch']} ({info['torch_threads']} threads{kernels})")
    else:
        parts.append("no PyTorch")
    if info.get("gpu"):
        parts.insert(1, f"GPU {info['gpu']}")
    if info.get("git_commit"):
        parts.append(f"xnet {info['git_commit']}")
    if info.get("load_average"):
        parts.append("load average at start " + " / ".join(f"{v:.1f}" for v in info["load_average"]))
    return "; ".join(parts)
