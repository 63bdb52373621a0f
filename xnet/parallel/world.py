"""The MPI world a process runs in: found from mpiexec's environment, mpi4py imported only then.

Every collective xnet makes goes through `World`, which waits for it without blocking inside MPI:
it polls the request, so that it can give up after `XNET_MPI_TIMEOUT` seconds (600 by default)
instead of hanging forever, and so that rank 0 hears of a rank that failed while the others wait.
A rank that fails sends its one-line reason to rank 0; rank 0 prints it, naming the rank, and
ends the whole job with MPI's abort (a rank that exits normally while others wait in a
collective would leave them waiting for ever). A rank killed outright (SIGKILL, the kernel's
out-of-memory killer) cannot say anything: then mpiexec itself stops the job and names the
process and the signal.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from typing import Any, NoReturn

import numpy as np

# variables the usual launchers set in each process they start: MPICH's and Intel MPI's hydra
# (PMI_*), Open MPI (OMPI_COMM_WORLD_*), MVAPICH (MV2_*)
SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
TIMEOUT_VAR = "XNET_MPI_TIMEOUT"
DEFAULT_TIMEOUT = 600.0
_FAIL_TAG = 17
_SPIN_SECONDS = 0.005  # poll without sleeping this long: a step's all-reduce usually ends sooner

_world: World | None = None


def _first_number(names: tuple[str, ...]) -> int | None:
    """The value of the first of the environment variables `names` that holds a number."""
    for name in names:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return None


def launched_size() -> int | None:
    """How many processes mpiexec started, read from the environment (None when not under a launcher)."""
    return _first_number(SIZE_VARS)


def launched_rank() -> int | None:
    """This process's rank as the launcher's environment gives it (None when not under a launcher)."""
    return _first_number(RANK_VARS)


def timeout_seconds() -> float:
    """XNET_MPI_TIMEOUT as seconds (a positive number), else the default."""
    text = os.environ.get(TIMEOUT_VAR, "")
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def import_mpi() -> Any:
    """mpi4py's MPI module, initialising MPI; XnetError saying what to install when it is missing."""
    from xnet.errors import XnetError

    try:
        import mpi4py

        # one thread at a time calls MPI: the main thread, or mpi4py.futures' manager on rank 0 of a study
        mpi4py.rc.thread_level = "serialized"
        from mpi4py import MPI
    except ImportError as e:
        size = launched_size()
        raise XnetError(
            f"xnet runs under mpiexec ({size} processes) but mpi4py cannot be imported ({e}): "
            'pip install "xnet[mpi]"'
        ) from None
    except RuntimeError as e:  # mpi4py found no MPI library
        raise XnetError(f"mpi4py found no usable MPI library ({e}): pip install \"xnet[mpi]\" brings one") from None
    return MPI


def current_world() -> World | None:
    """The World of this process when mpiexec started more than one; None otherwise (nothing imported)."""
    global _world
    if _world is None:
        size = launched_size()
        if size is None or size < 2:
            return None
        _world = World(import_mpi())
        share_cores(_world.local_size)
    return _world


def share_cores(ranks_here: int) -> None:
    """Give each of the `ranks_here` ranks on this machine its share of the cores for xnet's threads
    (unless XNET_NUM_THREADS says otherwise): N ranks with all cores each would oversubscribe them."""
    if "XNET_NUM_THREADS" in os.environ:
        return
    from xnet.backends.cpu_threads import usable_cores

    cores = usable_cores()  # affinity and cgroup CPU quota
    os.environ["XNET_NUM_THREADS"] = str(max(1, cores // max(1, ranks_here)))


def started_world() -> World | None:
    """The World if `current_world()` already created it, without creating one."""
    return _world


class World:
    """This process's place among the ranks, and the collectives xnet needs, each with a timeout."""

    def __init__(self, MPI: Any):
        self.MPI = MPI
        world = MPI.COMM_WORLD
        self.comm = world.Dup()  # xnet's collectives, apart from anything else on COMM_WORLD
        self.reports = world.Dup()  # failure reports to rank 0
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        node = world.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()
        self.timeout = timeout_seconds()

    @property
    def is_root(self) -> bool:
        """Whether this is rank 0, the one that prints and writes files."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"World(rank={self.rank}, size={self.size})"

    # -- collectives ------------------------------------------------------------------------------

    def allreduce(self, buf: Any, what: str) -> None:
        """Sum `buf` (a contiguous host or CUDA-aware buffer) over the ranks, in place."""
        self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buf, self.MPI.SUM), what)

    def allgather(self, values: np.ndarray, what: str) -> np.ndarray:
        """Every rank's `values` (same shape on each): (size, *values.shape)."""
        values = np.ascontiguousarray(values)
        out = np.empty((self.size, *values.shape), values.dtype)
        self._wait(self.comm.Iallgather(values, out), what)
        return out

    def allgather_objects(self, obj: Any, what: str) -> list[Any]:
        """Every rank's `obj` (picklable), in rank order."""
        data = np.frombuffer(pickle.dumps(obj), np.uint8)
        sizes = self.allgather(np.array([data.size], np.int64), what)[:, 0]
        out = np.empty(int(sizes.sum()), np.uint8)
        self._wait(self.comm.Iallgatherv(data, [out, sizes]), what)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        return [pickle.loads(out[starts[i] : starts[i + 1]].tobytes()) for i in range(self.size)]

    def barrier(self, what: str) -> None:
        """Wait until every rank is here."""
        self._wait(self.comm.Ibarrier(), what)

    def _wait(self, request: Any, what: str) -> None:
        """Complete `request`, listening for failure reports (rank 0), giving up after the timeout."""
        start = time.monotonic()
        polls = 0
        while not request.Test():
            polls += 1
            waited = time.monotonic() - start
            if waited > _SPIN_SECONDS or polls % 64 == 0:
                if self.rank == 0:
                    self._check_reports()
                if waited > self.timeout:
                    self.fail(
                        f"no answer from the other ranks for {self.timeout:g} s while {what}; a rank may have "
                        f"stopped or hung ({TIMEOUT_VAR} sets this limit)",
                        2,
                        grace=5.0,
                    )
                if waited > _SPIN_SECONDS:
                    time.sleep(min(0.001, waited / 100))  # do not burn a core through a long wait

    # -- failures ---------------------------------------------------------------------------------

    def _check_reports(self) -> None:
        """On rank 0: a failure report from another rank ends the job with its message."""
        status = self.MPI.Status()
        if self.reports.Iprobe(source=self.MPI.ANY_SOURCE, tag=_FAIL_TAG, status=status):
            source = status.Get_source()
            message, code = self.reports.recv(source=source, tag=_FAIL_TAG)
            self.abort(f"rank {source} of {self.size}: {message}", code)

    def fail(self, message: str, code: int, grace: float | None = None) -> NoReturn:
        """This rank failed on its own: rank 0 prints one line naming it, and the job ends.

        Another rank sends its reason to rank 0, which aborts the job when it next waits on the
        ranks; should rank 0 not answer within `grace` seconds (the timeout), this rank prints the
        line itself and aborts.
        """
        if self.rank == 0:
            self._check_reports()  # another rank's earlier failure is the cause to name
            self.abort(f"rank 0 of {self.size}: {message}", code)
        request = self.reports.isend((message, code), dest=0, tag=_FAIL_TAG)
        deadline = time.monotonic() + (self.timeout if grace is None else grace)
        while time.monotonic() < deadline:
            request.Test()
            time.sleep(0.01)  # rank 0 aborts the job, this process included
        self.abort(f"rank {self.rank} of {self.size}: {message} (rank 0 did not answer)", code)

    def abort(self, line: str, code: int) -> NoReturn:
        """Print `line` as xnet's one error line and end every rank with exit status `code`."""
        print(f"xnet: error: {line}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        # mpiexec's proxy forwards a rank's stderr through a pipe, and MPI_Abort tears the job down at
        # once: about 1 run in 10 of the hung-rank test lost the line (exit status 2, empty stderr).
        # A moment for the proxy to read it first.
        time.sleep(0.25)
        # MPI_Abort prints its own lines on stderr: the one above is all the user needs
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        self.MPI.COMM_WORLD.Abort(code)
        os._exit(code)  # not reached: Abort ends the process
