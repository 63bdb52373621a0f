"""Every CUDA kernel xnet can launch, compiled by NVIDIA's compiler (NVRTC) without a GPU.

Each launch (kernel x argument dtypes, cuda_launches.py) x 32- and 64-bit indexing x sm_80 (A100)
and sm_90 (H100) goes through CuPy's own code generation and libnvrtc (nvrtc.py), as CuPy would
compile it at the first launch on such a GPU. The host tests (g++ on the CUDA C) check the
arithmetic; this checks what only NVIDIA's compiler sees. Skips, with the reason, where CuPy or
libnvrtc is not installed (both come with the `dev` extra).
"""

from __future__ import annotations

import functools

import numpy as np
import nvrtc
import pytest

try:
    cupy = nvrtc.cupy_module()
except nvrtc.Unavailable as e:
    pytest.skip(f"NVRTC check skipped: {e}", allow_module_level=True)

from cuda_launches import FMAD_EXCUSE, Launch, _RawKernel, defined_kernels, fmad_problem, recorded_launches

ARCHS = ("sm_80", "sm_90")
LAUNCHES = recorded_launches()


@functools.cache
def _compile(source: str, opts: tuple[str, ...]) -> nvrtc.Result:
    return nvrtc.compile_source(source, opts)  # one compile per source and options in a session


def check_compiles(launch: Launch, index_32_bits: bool, arch: str) -> nvrtc.Result:
    """NVRTC's result for `launch` as CuPy would compile it; AssertionError with the log and the source if it fails."""
    if isinstance(launch.kernel, _RawKernel):
        source = launch.kernel.code  # RawKernel: compiled as written, without CuPy's headers
    else:
        source = nvrtc.elementwise_source(launch.kernel, launch.args, index_32_bits)
    opts = nvrtc.options(launch.options, arch)
    result = _compile(source, opts)
    if not result.ok or result.log:
        what = "does not compile" if not result.ok else "compiles with warnings"
        width = 32 if index_32_bits else 64
        raise AssertionError(
            f"{launch.describe()} {what} for {arch}, {width}-bit indices (NVRTC {nvrtc.version()}).\n"
            f"--- NVRTC log ---\n{result.log}\n--- options ---\n{' '.join(opts)}\n"
            f"--- generated source ---\n{source}"
        )
    return result


def test_every_kernel_the_modules_define_is_launched_here():
    launched = {launch.name for launch in LAUNCHES}
    missing = {name: module for name, module in defined_kernels().items() if name not in launched}
    assert not missing, (
        f"kernels defined but not reached by tests/backends/cuda_launches.py's _launch_all: {missing}; "
        "add a call of their launcher there so that NVRTC compiles them"
    )


def test_the_launches_cover_both_float_dtypes_of_each_float_kernel():
    # a kernel launched in float32 only would leave its float64 source uncompiled
    dtypes: dict[str, set[str]] = {}
    for launch in LAUNCHES:
        dtypes.setdefault(launch.name, set()).update(str(a.dtype) for a in launch.args if a.array)
    floating = {name: d for name, d in dtypes.items() if d & {"float32", "float64"}}
    assert floating and all({"float32", "float64"} <= d for d in floating.values()), dtypes


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("index_32_bits", [True, False], ids=["idx32", "idx64"])
@pytest.mark.parametrize("launch", LAUNCHES, ids=[launch.describe() for launch in LAUNCHES])
def test_every_launch_compiles_with_nvrtc(launch, index_32_bits, arch):
    check_compiles(launch, index_32_bits, arch)


@pytest.mark.parametrize("launch", LAUNCHES, ids=[launch.describe() for launch in LAUNCHES])
def test_every_kernel_turns_off_multiply_add_contraction_or_says_why(launch):
    problem = fmad_problem(launch)
    assert problem is None, problem


def test_the_contraction_check_accepts_the_flag_or_a_reason_and_nothing_else():
    def launch(options=(), preamble=""):
        spec = {"in_params": "T x", "out_params": "T y", "operation": "y = x * x + x;", "name": "xnet_check"}
        return Launch(cupy.ElementwiseKernel(**spec, preamble=preamble, options=options), ())

    assert fmad_problem(launch(("--fmad=false",))) is None
    assert fmad_problem(launch(preamble=f"// {FMAD_EXCUSE} integers only, nothing to contract")) is None
    assert "xnet_check" in fmad_problem(launch(("-lineinfo",)))


def _adam_float32(options: tuple[str, ...]) -> str:
    """The PTX of the Adam kernel in float32, built with `options` (compute_90: PTX is what names the instructions)."""
    (adam,) = [x for x in LAUNCHES if x.name == "xnet_adam" and x.args[-1].dtype.name == "float32"]
    source = nvrtc.elementwise_source(adam.kernel, adam.args, True)
    result = _compile(source, nvrtc.options(options, "compute_90"))
    assert result.ok, result.log
    return result.ptx


def test_the_optimizer_kernels_flag_removes_every_fused_multiply_add_from_adam():
    (adam,) = {x.kernel for x in LAUNCHES if x.name == "xnet_adam"}
    assert _adam_float32(adam.kwargs["options"]).count("fma.rn") == 0
    assert _adam_float32(()).count("fma.rn") > 0  # without it NVRTC contracts m += (1 - b1) * g and others


@pytest.mark.parametrize("kind", ["elementwise", "raw"])
def test_a_kernel_that_does_not_compile_fails_with_nvrtc_log_and_source(kind):
    if kind == "raw":
        code = 'extern "C" __global__ void xnet_broken(float* y) { y[0] = undeclared; }'
        broken = Launch(_RawKernel(code, "xnet_broken", ("--fmad=false",)), ())
    else:
        kernel = cupy.ElementwiseKernel("T x", "T y", "y = x * undeclared;", "xnet_broken", options=("--fmad=false",))
        f32 = np.dtype(np.float32)
        broken = Launch(kernel, (nvrtc.Arg(True, f32, 1), nvrtc.Arg(True, f32, 1)))
    with pytest.raises(AssertionError) as failure:
        check_compiles(broken, True, "sm_90")
    message = str(failure.value)
    assert "does not compile" in message and "undeclared" in message  # NVRTC's log names the identifier
    assert "--- generated source ---" in message and "xnet_broken" in message.split("--- generated source ---")[1]
