"""Summing a GPU gradient buffer over the ranks: NCCL through CuPy, else CUDA-aware MPI.

NOT YET RUN ON A GPU: written from CuPy's and mpi4py's documentation (cupy.cuda.nccl's
NcclCommunicator and allReduce; mpi4py passing device buffers through __cuda_array_interface__),
with no test on a CUDA machine so far. The CPU path (World.allreduce on a host buffer) is the one
the tests cover.

NCCL runs on the GPU's stream, so the all-reduce is queued like any kernel; the stop flag read
after it (GradientBuffer.all_reduce) is then a synchronisation per step. A rank that dies while
the others wait inside NCCL is not caught by XNET_MPI_TIMEOUT (that polls MPI requests only):
mpiexec's own clean-up ends such a job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xnet.backends import Array, Backend
from xnet.parallel.world import World


def device_all_reduce(world: World, backend: Backend) -> Callable[[Array], None]:
    """A function summing a contiguous CuPy array over the ranks in place: NCCL when CuPy has it,
    else the array handed to MPI directly (which needs an MPI built CUDA-aware)."""
    from xnet.backends.cupy_backend import import_cupy

    cupy = import_cupy()
    try:
        from cupy.cuda import nccl
    except ImportError:
        nccl = None
    if nccl is not None and getattr(nccl, "available", False):
        # rank 0 draws the communicator's id; every rank joins with it (one id per job)
        uid = nccl.get_unique_id() if world.is_root else None
        uid = world.allgather_objects(uid, "starting NCCL")[0]
        comm = nccl.NcclCommunicator(world.size, uid, world.rank)
        types = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64}

        def nccl_sum(flat: Any) -> None:
            stream = cupy.cuda.get_current_stream()
            comm.allReduce(flat.data.ptr, flat.data.ptr, flat.size, types[flat.dtype.name], nccl.NCCL_SUM, stream.ptr)

        return nccl_sum

    def mpi_sum(flat: Any) -> None:
        backend.synchronize()  # MPI reads device memory directly: the kernels writing it must be done
        world.allreduce(flat, "averaging gradients on the GPUs")

    return mpi_sum


__all__ = ["device_all_reduce"]
