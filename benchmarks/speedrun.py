"""Workload 7, the speedrun: experiments/speedrun.toml as `xnet train --config` trains it, and the same recipe
in PyTorch beside it (same layers and initial weights, same Adam, the lr of xnet's schedule every step, same
batch size, epochs and training split), both timed for training only, then tested.

The recipe is read through xnet's own config loader and built by xnet.runs.run.prepare_run, the code
`xnet train` runs, so the benchmark and the file cannot drift apart.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks import torch_side
from benchmarks.workloads import Layer
from xnet.config import RunConfig, config_dict_from_toml, validate
from xnet.runs.data import DataCache
from xnet.runs.run import PreparedRun, prepare_run
from xnet.train.progress import Reporter

RECIPE = Path(__file__).resolve().parent.parent / "experiments" / "speedrun.toml"
ACCURACY = 0.99  # the speedrun's goal: test accuracy after the recipe's last epoch
TARGET_SECONDS = 1.0  # on the H200 (issue 15), median over seeds 0-2
REPEATS = 3  # seeds 0, 1, 2
WARM_SAMPLES = 2048  # a few steps before the timed runs: kernels compiled, buffers allocated


def load_recipe(device: str, seed: int, path: Path | None = None) -> RunConfig:
    """The recipe (RECIPE unless `path`) as `xnet train --config <path> --device <device> --seed <seed>` resolves it."""
    file = path or RECIPE
    return validate(RunConfig(**{**config_dict_from_toml(file), "device": device, "seed": seed, "quiet": True}))


def _architecture(layers: list[dict[str, Any]]) -> str:
    """'conv 32,32 / 64,64 + batch norm, dense 128' for a model given as [[model.layers]]."""
    blocks, block, dense = [], [], []
    for t in layers:
        kind = str(t.get("type", "")).lower()
        if kind == "conv2d":
            block.append(str(t.get("out_channels")))
        elif kind in ("maxpool2d", "avgpool2d") and block:
            blocks, block = [*blocks, ",".join(block)], []
        elif kind in ("dense", "linear"):
            dense.append(str(t.get("out_features")))
    convs = " / ".join(blocks + ([",".join(block)] if block else []))
    norm = " + batch norm" if any("batchnorm" in str(t.get("type", "")).lower() for t in layers) else ""
    return ", ".join(filter(None, [convs and f"conv {convs}{norm}", dense[:-1] and f"dense {','.join(dense[:-1])}"]))


def describe(cfg: RunConfig) -> str:
    """One line naming the recipe for the results table."""
    if cfg.layers:
        model = _architecture(cfg.layers) or "custom layers"
    else:
        model = cfg.model + (" + batch norm" if cfg.batch_norm else "")
    lr = f"{cfg.lr:g}" if cfg.lr is not None else "(default lr)"
    sched = cfg.schedule + (f" (warm-up {cfg.warmup_epochs:g} epochs)" if cfg.warmup_epochs else "")
    return (f"speedrun (experiments/speedrun.toml): {model}, {cfg.optimizer} {lr} {sched}, "
            f"batch {cfg.batch_size}, {cfg.epochs} epoch{'s' * (cfg.epochs != 1)}; time and test accuracy")


def prepare(cfg: RunConfig, cache: DataCache) -> PreparedRun:
    """Data, model, optimizer, schedule, loader and trainer exactly as `xnet train` builds them."""
    run = prepare_run(cfg, Path("speedrun-not-written"), Reporter(), cache)
    run.trainer.checkpoint_path = None  # training only: `xnet train` also writes a checkpoint per epoch
    return run


def _check(ok: bool, what: str, layer: dict[str, Any]) -> None:
    if not ok:
        raise ValueError(f"speedrun: the PyTorch side cannot mirror {what} ({layer})")


def layers_of(model: Any) -> list[Layer]:
    """The benchmark layer list (workloads.py) of an xnet Sequential; ValueError for a layer PyTorch's side lacks."""
    out: list[Layer] = []
    for c in model.config()["layers"]:
        kind = c["type"]
        if kind == "conv2d":
            same = c["kernel_size"] == 3 and c["padding"] in ("same", 1) and c["stride"] == 1
            _check(same and c["dilation"] == 1 and c["groups"] == 1, "a convolution other than 3x3, pad 1", c)
            out.append(("conv", c["in_channels"], c["out_channels"], c["bias"]))
        elif kind in ("batchnorm2d", "batchnorm1d"):
            _check(c["eps"] == 1e-5 and c["momentum"] == 0.1, "batch norm other than eps 1e-5, momentum 0.1", c)
            out.append(("bn2d" if kind == "batchnorm2d" else "bn1d", c.get("num_channels", c.get("num_features"))))
        elif kind == "maxpool2d":
            _check(c["kernel_size"] == 2 and c["stride"] == 2 and c["padding"] == 0, "pooling other than 2x2", c)
            out.append(("maxpool",))
        elif kind == "dense":
            _check(c.get("bias", True), "a dense layer without bias", c)
            out.append(("dense", c["in_features"], c["out_features"]))
        elif kind == "dropout":
            out.append(("dropout", c["p"]))
        elif kind in ("relu", "flatten"):
            out.append((kind,))
        else:
            _check(False, f"a {kind} layer", c)
    return out


def adam_of(optimizer: Any) -> dict[str, Any]:
    """torch.optim.Adam's arguments equal to an xnet Adam's; ValueError for settings PyTorch's Adam differs on."""
    c = optimizer.config()
    plain = c["type"] == "adam" and c["bias_correction"] and not c["weight_decay"]
    # xnet's weight decay skips biases and batch norm, PyTorch's does not: the mirror refuses what it cannot copy
    if not plain or any(k in c for k in ("regularizers", "clip_norm", "clip_value")):
        raise ValueError(f"speedrun: the PyTorch side mirrors plain Adam only, the recipe has {c}")
    return {"lr": c["lr"], "betas": (c["beta1"], c["beta2"]), "eps": c["eps"]}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def run_speedrun(ctx: dict[str, Any], repeats: int) -> dict[str, Any]:
    """Training seconds and test accuracy of the recipe for seeds 0..repeats-1, xnet and PyTorch alternating."""
    device, use_torch, cache = ctx["device"], ctx["torch"], DataCache()

    def xnet_run(seed: int, warm: bool = False) -> tuple[float, float]:
        run = prepare(load_recipe(device, seed), cache)
        train = run.loader
        if warm:
            train = (run.data.train.inputs[:WARM_SAMPLES], run.data.train.y[:WARM_SAMPLES])  # uint8 stays so
        run.backend.synchronize()
        t0 = time.perf_counter()
        run.trainer.fit(train, 1 if warm else run.cfg.epochs, batch_size=run.loader.batch_size)
        run.backend.synchronize()
        seconds = time.perf_counter() - t0
        return seconds, float(run.trainer.evaluate(run.data.test).accuracy)

    def torch_run(seed: int, warm: bool = False) -> tuple[float, float]:
        run = prepare(load_recipe(device, seed), cache)  # the same initial weights, split and schedule
        torch_side.torch.manual_seed(seed)
        model = torch_side.build_model(layers_of(run.trainer.model), run.trainer.model, device)
        opt = torch_side.torch.optim.Adam(model.parameters(), **adam_of(run.trainer.optimizer))
        X, Y = torch_side.to_device(run.data.train.x, run.data.train.y, device)
        if warm:
            X, Y = X[:WARM_SAMPLES], Y[:WARM_SAMPLES]
        batch, steps = run.loader.batch_size, len(run.loader)
        total = 0.0
        for epoch in range(1 if warm else run.cfg.epochs):
            total += torch_side.time_epoch(model, opt, X, Y, batch, device, lr_at=run.trainer.schedule.lr_at,
                                           first_step=epoch * steps)
        Xt, Yt = torch_side.to_device(run.data.test.x, run.data.test.y, device)
        return total, torch_side.accuracy(model, Xt, Yt)

    sides = [("xnet", xnet_run)] + ([("torch", torch_run)] if use_torch else [])
    for _, fn in sides:
        fn(0, warm=True)  # first calls compile kernels and start threads; not timed
    seconds: dict[str, list[float]] = {name: [] for name, _ in sides}
    accs: dict[str, list[float]] = {name: [] for name, _ in sides}
    notes = []
    for r in range(repeats):
        for name, fn in sides if r % 2 == 0 else sides[::-1]:
            secs, acc = fn(r)
            seconds[name].append(secs)
            accs[name].append(acc)
            print(f"  repeat {r + 1}/{repeats} (seed {r}) {name}: {secs:.2f} s, test accuracy {acc:.2%}", flush=True)
            notes.append(f"{name} seed {r}: {secs:.2f} s, {acc:.2%}")
    mx, mt = _median(seconds["xnet"]), _median(seconds.get("torch", []))
    row = {"xnet": mx, "torch": mt, "ratio": mx / mt if mx is not None and mt else None,
           "xnet_runs": seconds["xnet"], "torch_runs": seconds.get("torch", []),
           "xnet_accuracy": _median(accs["xnet"]), "torch_accuracy": _median(accs.get("torch", [])),
           "xnet_accuracies": accs["xnet"], "torch_accuracies": accs.get("torch", []),
           "min_accuracy": ACCURACY, "repeats": repeats}  # fmt: skip
    row["note"] = (f"median test accuracy xnet {row['xnet_accuracy']:.2%}"
                   + (f", PyTorch {row['torch_accuracy']:.2%}" if mt is not None else "") + "; " + "; ".join(notes))
    return row
