"""Workload 6: peak resident memory of a training process, measured from outside.

Each command runs as a child process whose own ru_maxrss comes from os.wait4 (in a launcher,
see below), so several measurements in one benchmark run do not mix (RUSAGE_CHILDREN would
report the largest child so far).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The PyTorch equivalent of the default `xnet train`: MLP 784-256-128-10 ReLU, Adam 1e-3,
# batch 128, test accuracy after every epoch. Run as `python -c` in a fresh interpreter.
TORCH_DEFAULT_TRAIN = """
import sys, numpy as np, torch, torch.nn.functional as F
from torch import nn
from xnet.data import load_dataset
torch.set_num_threads(__import__("os").cpu_count())
device, epochs = sys.argv[1], int(sys.argv[2])
ds = load_dataset("mnist")
X = torch.from_numpy(ds.train.x).to(device); Y = torch.from_numpy(ds.train.y).to(device)
Xt = torch.from_numpy(ds.test.x).to(device); Yt = torch.from_numpy(ds.test.y).to(device)
model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                      nn.Linear(128, 10)).to(device)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(epochs):
    perm = torch.randperm(X.shape[0], device=device)
    for i in range(0, X.shape[0], 128):
        idx = perm[i:i + 128]
        loss = F.cross_entropy(model(X[idx]), Y[idx])
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    with torch.no_grad():
        acc = sum(int((model(Xt[i:i + 1000]).argmax(1) == Yt[i:i + 1000]).sum())
                  for i in range(0, Xt.shape[0], 1000)) / Xt.shape[0]
print(f"test accuracy {acc:.4f}")
"""


# A small launcher process starts the command and reports the command's own ru_maxrss. Linux
# keeps the larger of the pre-exec and post-exec peaks, and this benchmark process (MNIST and
# PyTorch loaded) would otherwise lend the child its own size: the launcher is ~10 MB.
LAUNCHER = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(proc.pid, 0)
proc.returncode = os.waitstatus_to_exitcode(status)
kb = usage.ru_maxrss / (1024 if sys.platform == "darwin" else 1)  # bytes on macOS
print(json.dumps({"rc": proc.returncode, "kb": kb}))
"""


def peak_rss_mb(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run `cmd`; returns (its peak resident memory in MB, seconds, last output line).

    Raises RuntimeError with the child's last output lines when it fails.
    """
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", LAUNCHER, *cmd], capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - t0
    lines = (out.stdout + out.stderr).strip().splitlines()
    try:
        report = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        report = {"rc": out.returncode, "kb": 0}
    tail = [line for line in lines if not line.startswith('{"rc"')][-3:]
    if report["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... exited with {report['rc']}: " + " | ".join(tail))
    return report["kb"] / 1024, seconds, tail[-1] if tail else ""


def xnet_train_peak(device: str, epochs: int | None) -> tuple[float, float, str]:
    """Peak RSS (MB), seconds and summary line of `xnet train` with its defaults (quiet)."""
    with tempfile.TemporaryDirectory(prefix="xnet-bench-") as out:
        cmd = [sys.executable, "-c", "from xnet.cli import main; main()", "train", "--quiet",
               "--out", out, "--device", device]
        if epochs is not None:
            cmd += ["--epochs", str(epochs)]
        return peak_rss_mb(cmd)


def torch_train_peak(device: str, epochs: int) -> tuple[float, float, str]:
    """Peak RSS (MB), seconds and accuracy line of the PyTorch equivalent."""
    return peak_rss_mb([sys.executable, "-c", TORCH_DEFAULT_TRAIN, device, str(epochs)])
