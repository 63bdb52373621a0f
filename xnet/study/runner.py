"""Planning and running a study in one process: every variant's runs checked before any trains, then trained
in order (finished runs skipped, an interrupted one continued), the summary rewritten after each variant."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xnet.atomic import ensure_folder
from xnet.config import DEFAULTS, LOCAL_KEYS, RunConfig
from xnet.errors import ConfigError, DataError, DivergedError, XnetError
from xnet.study.file import Study, Variant, check_folders, run_folder_name
from xnet.study.summary import summarize, write_summary
from xnet.train.progress import Reporter

__all__ = ["Run", "StudyInterrupted", "finished_metrics", "prepare_study", "run_study", "train_variant"]

NAME_MAX = 255  # bytes in one file name on ext4, APFS, NTFS (in UTF-16 units there), ...


class StudyInterrupted(XnetError):
    """Ctrl-C during a study: the running variant saved a checkpoint; rerunning continues it."""

    exit_code = 130


def _same_config(saved: dict[str, Any] | None, cfg: RunConfig) -> bool:
    """Whether a finished run was trained with `cfg` (where it was written and device aside)."""
    if not isinstance(saved, dict):
        return False
    # a variant trains in one process, where sync_batch_norm changes nothing (studies saved before it existed lack it);
    # checkpoint_every says when a run saves, not what it computes
    ignore = {*LOCAL_KEYS, "device", "sync_batch_norm", "checkpoint_every"}
    ours = {k: v for k, v in cfg.to_dict().items() if k not in ignore}
    # an option newer than the saved run was at its default there
    return all(saved.get(k, getattr(DEFAULTS, k)) == v for k, v in ours.items())


def finished_metrics(run_dir: Path, cfg: RunConfig | None = None) -> dict[str, Any] | None:
    """The metrics of a run that completed (or diverged) earlier with this config, else None."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(metrics, dict) or metrics.get("interrupted"):
        return None
    if cfg is not None and not _same_config(metrics.get("config"), cfg):
        return None
    return metrics


def _resumable(checkpoint: Path, cfg: RunConfig) -> bool:
    """An interrupted run of exactly this configuration left `checkpoint` (else start afresh)."""
    from xnet.train.checkpoint import load_checkpoint

    if not checkpoint.is_file():
        return False
    try:
        state = load_checkpoint(checkpoint)
    except XnetError:
        return False
    done = state.get("trainer", {}).get("epoch", 0)
    return _same_config(state.get("config"), cfg) and isinstance(done, int) and done < cfg.epochs


def train_variant(cfg: RunConfig, run_dir: Path, reporter: Reporter, cache: Any) -> dict[str, Any]:
    """Train (or continue an interrupted run of) one variant; a diverged run becomes a status."""
    from xnet.runs.folder import write_record
    from xnet.runs.run import RunDiverged, run_training

    try:
        # a variant folder belongs to the study: a changed variant's old files must not outlive it
        resume = _resumable(run_dir / "model.npz", cfg)
        result = run_training(cfg, reporter, resume=resume, existing="replace", cache=cache)
    except RunDiverged as e:
        if not e.written:  # diverged in its first epoch: recorded anyway, so the study does not retry it
            write_record(run_dir, e.metrics)
        return e.metrics
    if result.interrupted:
        raise StudyInterrupted(
            f"interrupted: the running variant saved its checkpoint in {run_dir}; "
            "run the same `xnet compare` again to continue where it stopped"
        )
    return result.metrics


@dataclass
class Run:
    """One seed of one variant: its configuration and folder, and its metrics if it finished earlier."""

    variant: Variant
    k: int
    cfg: RunConfig
    folder: Path
    finished: dict[str, Any] | None


def plan_runs(study: Study, out_dir: Path, repeat: int, overrides: dict[str, Any]) -> list[list[Run]]:
    """Every run of the study, per variant, with validated configs and distinct folders; creates nothing."""
    plan = []
    for variant in study.variants:
        try:
            base_cfg = variant.config.replace(**overrides)
        except ConfigError as e:
            raise ConfigError(f"variant {variant.name!r}: {e}") from None
        runs = []
        for k in range(repeat):
            cfg = base_cfg.replace(seed=base_cfg.seed + k, quiet=True)
            folder = out_dir / (run_folder_name(variant.name) + (f"-seed{cfg.seed}" if k else ""))
            if len(os.fsencode(folder.name)) > NAME_MAX:
                raise ConfigError(
                    f"variant {variant.name!r}: its folder name {folder.name!r} is longer than the {NAME_MAX} bytes "
                    "a file system allows; give the variant a shorter name"
                )
            cfg.out = str(folder)
            runs.append(Run(variant, k, cfg, folder, finished_metrics(folder, cfg)))
        plan.append(runs)
    # with --repeat, variant "a" also uses a-seed1, ...: a variant named "a-seed1" would share it
    check_folders([(r.folder.name, r.variant.name) for runs in plan for r in runs], "study")
    return plan


def _check_runnable(runs: list[Run]) -> None:
    """Check the device and the dataset of every run still to train, so a bad variant stops the
    study before any trains: each distinct device is started once, each dataset located, not read."""
    from xnet.backends import BackendUnavailable, get_backend
    from xnet.data.datasets import check_dataset

    devices: set[str] = set()
    datasets: set[tuple[str, str | None]] = set()
    for run in runs:
        cfg, where = run.cfg, f"variant {run.variant.name!r}"
        if cfg.device not in devices:
            try:
                get_backend(cfg.device, seed=cfg.seed)
            except (BackendUnavailable, TypeError, ValueError) as e:
                raise ConfigError(f"{where}: device: {e}") from None
            devices.add(cfg.device)
        if (cfg.dataset, cfg.data_dir) not in datasets:
            try:
                check_dataset(cfg.dataset, cfg.data_dir)
            except DataError as e:
                raise DataError(f"{where}: {e}") from None
            datasets.add((cfg.dataset, cfg.data_dir))


def _check_trainable(runs: list[Run]) -> None:
    """Build every variant still to train as training will (data, model, loss, optimizer, schedule,
    one forward pass) and drop it again, so a variant that cannot train stops the study before any does.

    One run per variant is built: its seeds differ in nothing these checks see. Variants on the same
    data are built one after another, so each dataset is read once and one is held at a time. The
    error reported is that of the first bad variant in the study's order.
    """
    from xnet.runs.data import DataCache, data_key
    from xnet.runs.run import prepare_run

    first: dict[str, Run] = {}
    for run in runs:
        first.setdefault(run.variant.name, run)
    firsts = list(first.values())
    groups: dict[tuple[Any, ...], int] = {}
    for run in firsts:
        groups.setdefault(data_key(run.cfg), len(groups))
    cache, failed = DataCache(), None
    for index, run in sorted(enumerate(firsts), key=lambda item: groups[data_key(item[1].cfg)]):
        if failed is not None and failed[0] < index:
            continue  # a later variant's error would not be the one reported
        try:
            prepare_run(run.cfg, run.folder, Reporter(), cache)
        except (XnetError, OSError, ValueError, TypeError, MemoryError) as e:
            failed = (index, _variant_error(run.variant.name, e))
    if failed is not None:
        raise failed[1]


def _variant_error(name: str, error: Exception) -> XnetError:
    """`error` as a one-line error naming the variant, keeping its exit code."""
    where = f"variant {name!r}"
    if isinstance(error, MemoryError):  # NumPy's _ArrayMemoryError, CuPy's OutOfMemoryError
        reason = error or "an allocation failed"
        return XnetError(f"{where}: out of memory: {reason} (try a smaller model or batch_size)")
    if isinstance(error, OSError) and error.filename:
        return XnetError(f"{where}: {error.strerror or error}: {error.filename}")
    kind = type(error) if type(error) in (XnetError, ConfigError, DataError, DivergedError) else XnetError
    return kind(f"{where}: {error}")


def prepare_study(study: Study, out_dir: Path, repeat: int, overrides: dict[str, Any]) -> list[list[Run]]:
    """Every run of the study per variant (see run_study), each variant checked; creates out_dir only."""
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ConfigError(f"--repeat must be a positive integer, got {repeat!r}")
    plan = plan_runs(study, out_dir, repeat, overrides)
    to_train = [r for runs in plan for r in runs if r.finished is None]
    _check_runnable(to_train)  # cheap: a missing file is found before any data is read
    _check_trainable(to_train)
    ensure_folder(out_dir)  # "Not a directory" when a file stands in the way
    return plan


def run_study(
    study: Study,
    out_dir: Path,
    repeat: int = 1,
    overrides: dict[str, Any] | None = None,
    reporter_factory: Any = None,
    skipped: Any = None,
    written: Any = None,
) -> list[dict[str, Any]]:
    """Run every variant `repeat` times (seeds seed, seed+1, ...), skipping finished runs.

    Every variant is checked first (configuration, folder, device, then built on its data as
    training will build it), so a bad one stops the study before anything trains or any folder is
    made. The first seed of a variant trains in out_dir/<variant>, later ones in <variant>-seed<N>,
    so raising --repeat reuses the runs already there. summary.md/.csv and curves.png are rewritten
    after every variant. `skipped(name, k)` is called for each run found finished, `written(files)`
    with the names of the summary files after each rewrite (curves.png only where it was drawn).
    """
    from xnet.runs.data import DataCache

    out_dir, overrides = Path(out_dir), dict(overrides or {})
    plan = prepare_study(study, out_dir, repeat, overrides)
    rows, cache = [], DataCache()
    for runs in plan:
        results = []
        for run in runs:
            metrics = run.finished
            if metrics is None:
                reporter = reporter_factory(run.variant.name, run.k) if reporter_factory else Reporter()
                metrics = train_variant(run.cfg, run.folder, reporter, cache)
            elif skipped is not None:
                skipped(run.variant.name, run.k)
            results.append(metrics)
        rows.append(summarize(runs[0].variant.name, results, [r.folder for r in runs]))
        files = write_summary(study, rows, out_dir, overrides)
        if written is not None:
            written(files)
    return rows
