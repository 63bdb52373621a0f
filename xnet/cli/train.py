"""`xnet train`: every RunConfig field as a flag; a TOML file may give them, flags override it."""

from __future__ import annotations

from pathlib import Path

import typer

from xnet.cli.app import app
from xnet.config import CHOICES, RunConfig

D = RunConfig()


def _h(text: str, default: object) -> str:
    return f"{text} [default: {default}]"


def _opt(text: str, default: object, *names: str) -> typer.models.OptionInfo:
    return typer.Option(None, *names, help=_h(text, default), show_default=False)


def _choices(key: str) -> str:
    return "|".join(CHOICES[key])


@app.command()
def train(
    model: str = _opt("Model preset: mlp, cnn, lenet5, small-cnn, bn-cnn.", D.model, "--model"),
    hidden: str = _opt("Hidden layer sizes of the MLP, e.g. 256,128.", "256,128", "--hidden"),
    activation: str = _opt(_choices("activation"), D.activation, "--activation"),
    init: str = _opt(
        "Weight initialiser: zeros, normal, uniform, xavier_normal, xavier_uniform, kaiming_normal, "
        "kaiming_uniform (arguments as in 'normal(std=0.02)').",
        "kaiming for relu, xavier otherwise",
        "--init",
    ),
    loss: str = _opt(f"{_choices('loss')} (mse on softmax outputs for classification).", D.loss, "--loss"),
    optimizer: str = _opt(_choices("optimizer"), D.optimizer, "--optimizer"),
    lr: float = _opt("Learning rate.", "the optimizer's default", "--lr"),
    momentum: float = _opt(
        "Momentum of sgd/momentum/nesterov.", "0.9 for momentum and nesterov, 0 (none) for sgd", "--momentum"
    ),
    l1: float = _opt("L1 regularisation strength on weights.", D.l1, "--l1"),
    l2: float = _opt("L2 regularisation strength on weights.", D.l2, "--l2"),
    dropout: float = _opt("Dropout probability after each hidden layer.", D.dropout, "--dropout"),
    batch_norm: bool = _opt("Batch normalisation after each hidden layer.", False, "--batch-norm/--no-batch-norm"),
    schedule: str = _opt(_choices("schedule"), D.schedule, "--schedule"),
    epochs: int = _opt("Number of epochs.", D.epochs, "--epochs"),
    batch_size: str = _opt("Batch size: a number, or 'full' for batch gradient descent.", D.batch_size, "--batch-size"),
    val_split: float = _opt("Fraction of the training set held out for validation.", D.val_split, "--val-split"),
    normalize: str = _opt(_choices("normalize"), D.normalize, "--normalize"),
    augment: bool = _opt("Random shifts and rotations while training.", False, "--augment/--no-augment"),
    early_stopping: int = _opt("Stop after this many epochs with no better val_loss (0: off).", 0, "--early-stopping"),
    dataset: str = _opt("mnist, idx:DIR, csv:FILE or sine.", D.dataset, "--dataset"),
    data_dir: str = _opt("Folder holding the dataset's files.", "$XNET_DATA_DIR, then the cache", "--data-dir"),
    limit: int = _opt(
        "Use only the first N training samples and the first N//6 test samples, at least 1 (quick experiments).",
        "all",
        "--limit",
    ),
    device: str = _opt("cpu, cuda, cuda:N or auto.", D.device, "--device"),
    dtype: str = _opt(_choices("dtype"), D.dtype, "--dtype"),
    seed: int = _opt("Random seed (weights, shuffling, dropout).", D.seed, "--seed"),
    sync_batch_norm: bool = _opt(
        "Under mpiexec: batch norm normalises over the global batch (as one process), not each rank's shard.",
        False,
        "--sync-batch-norm/--no-sync-batch-norm",
    ),
    config: Path = typer.Option(None, "--config", help="TOML file with any of these options; flags override it."),
    out: str = _opt("Output folder.", "runs/<timestamp>-<model>", "--out"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its model.npz."),
    overwrite: bool = typer.Option(
        False, "--overwrite",
        help="Replace the run already in --out (its files stay if the new run fails before writing its own).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the final summary."),
) -> None:
    """Train a model and write metrics.json, history.csv, model.npz, config.toml and curves.png.

    An --out folder that already holds a run is refused unless --resume or --overwrite says what to do with it.
    """
    flags = {k: v for k, v in locals().items() if k not in ("config", "resume", "overwrite") and v is not None}
    if resume and overwrite:
        from xnet.errors import XnetError

        raise XnetError("--resume continues the run in --out and --overwrite replaces it: pass one of them")
    from xnet.parallel.agree import agreement
    from xnet.parallel.world import current_world

    world = current_world()  # None unless mpiexec started several processes (then see xnet/parallel/)
    with agreement(world, "reading the configuration"):
        cfg = resolve_config(config, flags, resume)
    from xnet.train.progress import Reporter, make_reporter
    from xnet.train.run import run_training

    parallel = None
    if world is not None:
        from xnet.parallel.data_parallel import DataParallel

        parallel = DataParallel(world, cfg.sync_batch_norm)
    root = world is None or world.is_root
    existing = "replace" if overwrite else "refuse"
    reporter = make_reporter(cfg.quiet) if root else Reporter()  # rank 0 alone prints
    result = run_training(cfg, reporter, resume=resume, existing=existing, parallel=parallel)
    if root:
        print(summary_line(result.metrics, result.out_dir))
    if result.interrupted and not root:
        raise typer.Exit(130)
    if result.interrupted:
        print(
            f"interrupted: checkpoint saved to {result.out_dir / 'model.npz'}; resume with: "
            f"xnet train --resume --out {result.out_dir}"
        )
        raise typer.Exit(130)


def resolve_config(config: Path | None, flags: dict, resume: bool) -> RunConfig:
    """Defaults < checkpoint's config (when resuming) < config file < flags, validated."""
    from xnet.config import config_dict_from_toml, validate

    base: dict = {}
    if resume:
        if "out" not in flags:
            raise typer.BadParameter("--resume needs --out DIR naming the run to continue")
        from xnet.train.checkpoint import load_checkpoint
        from xnet.train.restore import saved_config

        path = Path(flags["out"]) / "model.npz"
        if not path.is_file():
            from xnet.errors import XnetError

            raise XnetError(f"--resume: no checkpoint at {path}")
        base = saved_config(path, load_checkpoint(path)["config"]).to_dict()  # names the file if unusable
        base.pop("quiet", None)
    if config is not None:
        base.update(config_dict_from_toml(config))
    base.update(flags)
    return validate(RunConfig(**base))


def summary_line(metrics: dict, out_dir: Path) -> str:
    """The final one-line summary."""
    n = metrics["epochs_completed"]
    secs = metrics["train_seconds"]
    if metrics["task"] == "regression":
        head = f"test MSE {metrics['test_loss']:.4g}"
    elif metrics["test_accuracy"] is not None:
        head = f"test accuracy {metrics['test_accuracy']:.2%} (loss {metrics['test_loss']:.4f})"
    else:
        head = f"train accuracy {metrics['train_accuracy']:.2%}"
    ranks = metrics.get("ranks", 1)
    where = metrics["device"] if ranks == 1 else f"{ranks} ranks ({metrics['device']} each)"
    return f"{head} after {n} epoch{'s' * (n != 1)} in {secs:.1f}s on {where}; outputs in {out_dir}"
