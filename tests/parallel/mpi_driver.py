"""`xnet` with a probe on one rank, for the MPI tests: python mpi_driver.py MODE RANK STEP -- XNET ARGS.

After the optimizer's STEP-th update on rank RANK, MODE does one of:
  kill    the rank kills itself with SIGKILL (as the out-of-memory killer would)
  stop    the rank stops itself (SIGSTOP): it hangs, and the others must time out
  memory  raises MemoryError (a failed allocation on that rank)
  bug     raises RuntimeError (an internal error)
  check   (RANK and STEP ignored) after every update, every rank compares a hash of its weights
          with the others', and after every epoch its record (all but the seconds taken); rank 0
          prints "identical after N steps and M records", or the job fails at the first step or
          epoch where they differ.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys

from xnet.optim.optimizer import Optimizer
from xnet.train import Callback
from xnet.train.trainer import Trainer

mode, target, at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
args = sys.argv[sys.argv.index("--") + 1 :]
rank = int(os.environ.get("PMI_RANK", "0"))
update = Optimizer.step
fit = Trainer.fit
steps = records = 0


def probed_step(self: Optimizer) -> None:
    global steps
    update(self)
    steps += 1
    if mode == "check":
        from xnet.parallel.world import started_world

        world = started_world()
        digest = hashlib.sha256()
        for p in self.parameters():
            digest.update(p.data.tobytes() if hasattr(p.data, "tobytes") else bytes(p.data._array))
        hashes = world.allgather_objects(digest.hexdigest(), "comparing weights")
        if len(set(hashes)) != 1:
            raise SystemExit(f"weights differ between ranks after step {steps}")
        return
    if rank != target or steps != at:
        return
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)
    if mode == "memory":
        raise MemoryError("Unable to allocate 3.20 GiB (simulated)")
    if mode == "bug":
        raise RuntimeError("simulated internal error")


class CompareRecords(Callback):
    """At each epoch's end, before its checkpoint: every rank's record is the same."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        global records
        from xnet.parallel.world import started_world

        mine = {k: v for k, v in logs.items() if k != "seconds"}
        if len({repr(r) for r in started_world().allgather_objects(mine, "comparing records")}) != 1:
            raise SystemExit(f"records differ between ranks at epoch {epoch}")
        records += 1


def compared_fit(self: Trainer, *args, callbacks=None, **kwargs):
    return fit(self, *args, callbacks=[*(callbacks or []), CompareRecords()], **kwargs)


Optimizer.step = probed_step
if mode == "check":
    Trainer.fit = compared_fit

from xnet.cli import main  # noqa: E402

try:
    main(args)
finally:
    if mode == "check" and rank == 0:
        print(f"identical after {steps} steps and {records} records", flush=True)
