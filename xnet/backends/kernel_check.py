"""How xnet's CUDA kernels are built and trusted: one ElementwiseKernel per name, probed once before use.

CuPy compiles an ElementwiseKernel at its first launch for a dtype, so a CUDA compiler error, or a
kernel that gives other numbers than the Array API reference on this GPU, shows only then. Every
fused kernel (cuda_philox.py, cuda_optim_kernels.py, cuda_nn_kernels.py) is built here once per
name, and its caller runs a small probe of it before the first real launch; where the probe raises
or reports a difference, one RuntimeWarning says so and the caller keeps its reference body. The
backend that owns the kernel keeps the verdict (Backend.kernel_ok), per kernel name (and dtype for
the optimizer kernels). Written from CuPy's documentation and source and run on the host by the tests
(tests/backends/cuda_on_host.py); not yet run on a GPU.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

_kernels: dict[str, Any] = {}  # kernel name -> its cupy.ElementwiseKernel


def elementwise(cupy: Any, spec: dict[str, str], preamble: str = "", options: tuple[str, ...] = ()) -> Any:
    """cupy.ElementwiseKernel(**spec, preamble=, options=), built once per spec["name"] (compiled at first launch)."""
    kernel = _kernels.get(spec["name"])
    if kernel is None:
        kernel = _kernels[spec["name"]] = cupy.ElementwiseKernel(preamble=preamble, options=options, **spec)
    return kernel


def first_use_ok(kernel: str, probe: Callable[[], str | None], label: str = "CUDA") -> bool:
    """Whether `probe()` (launching `kernel` on small inputs: None, or what it got wrong) passed; else warn once.

    An exception counts as a failure: CuPy compiles before writing anything, so the caller's arrays
    are untouched and its reference body still works."""
    try:
        problem = probe()
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0]  # compiler errors run over many lines
        problem = f"failed ({e.__class__.__name__}: {first})"
    if problem is None:
        return True
    warnings.warn(
        f"xnet's {label} {kernel} {problem}; the slower Array API reference runs instead", RuntimeWarning, stacklevel=4
    )
    return False
