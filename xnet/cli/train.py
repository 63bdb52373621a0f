"""`xnet train`: every RunConfig field as a flag; a TOML file may give them, flags override it.

Past 300 lines only by `train`'s signature: typer needs every RunConfig field written out as a flag.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import typer

from xnet.cli.text import help_text
from xnet.config import CHOICES, RunConfig

D = RunConfig()
NOT_CONFIG = ("config", "resume", "overwrite", "resume_if_exists")  # the flags that are no RunConfig option
MODEL, DATA, OPTIM, SCHEDULE, REGULAR, RUN = (
    "Model", "Data", "Loss and optimisation", "Learning-rate schedule", "Regularisation", "Run",
)  # fmt: skip


def _opt(text: str, default: object, flag: str, panel: str) -> typer.models.OptionInfo:
    """An option that is None unless given (so a config file's value stands), its default in the help."""
    return typer.Option(None, flag, help=help_text(f"{text} [default: {default}]"), show_default=False,
                        rich_help_panel=panel)  # fmt: skip


def _choices(key: str) -> str:
    return ", ".join(CHOICES[key])


def _uses(option: str) -> str:
    """'(adam, adamw)': which optimizers, losses or schedules read `option`, for its help line."""
    from xnet.config.options import KINDS

    users = [c for table in KINDS.values() for c, keys in table.items() if option in keys]
    return f"({', '.join(users)})"


def train(
    model: str = _opt("Model preset: mlp, cnn, lenet5, small-cnn, bn-cnn.", D.model, "--model", MODEL),
    hidden: str = _opt("Hidden layer sizes of the MLP, e.g. 256,128.", "256,128", "--hidden", MODEL),
    activation: str = _opt(_choices("activation"), D.activation, "--activation", MODEL),
    alpha: float = _opt(
        "Slope of leaky_relu for x < 0, or elu's scale of its negative side (elu's default: 1).", 0.01, "--alpha", MODEL
    ),
    init: str = _opt(
        "Weight initialiser: zeros, normal, uniform, xavier_normal, xavier_uniform, kaiming_normal, "
        "kaiming_uniform (arguments as in 'normal(std=0.02)'), torch (PyTorch's default: U(+-1/sqrt(fan_in)), "
        "biases too), keras (Keras's: glorot_uniform, zero biases).",
        "kaiming for relu, xavier otherwise", "--init", MODEL,
    ),  # fmt: skip
    bias_init: str = _opt("Bias initialiser: any --init name, e.g. zeros, torch, constant(value=0.1).",
                          "zeros; torch with --init torch", "--bias-init", MODEL),  # fmt: skip
    batch_norm: bool = _opt("Batch normalisation after each hidden layer.", False, "--batch-norm/--no-batch-norm",
                            MODEL),  # fmt: skip
    bn_momentum: float = _opt("Batch norm: weight of each batch in the running statistics.", 0.1, "--bn-momentum",
                              MODEL),  # fmt: skip
    bn_eps: float = _opt("Batch norm: added to the variance.", 1e-5, "--bn-eps", MODEL),
    dataset: str = _opt("mnist, fashion-mnist, idx:DIR, csv:FILE or sine.", D.dataset, "--dataset", DATA),
    data_dir: str = _opt("Folder holding the dataset's files.", "$XNET_DATA_DIR, then the cache", "--data-dir", DATA),
    limit: int = _opt(
        "Use only the first N training samples and the first N//6 test samples, at least 1 (quick experiments).",
        "all", "--limit", DATA,
    ),  # fmt: skip
    val_split: float = _opt("Fraction of the training set held out for validation.", D.val_split, "--val-split",
                            DATA),  # fmt: skip
    normalize: str = _opt(_choices("normalize"), D.normalize, "--normalize", DATA),
    augment: bool = _opt("Random shifts and rotations while training.", False, "--augment/--no-augment", DATA),
    loss: str = _opt(f"{_choices('loss')} (mse on softmax outputs for classification).", D.loss, "--loss", OPTIM),
    loss_reduction: str = _opt(
        "mean or sum: average the loss over the batch, or add it up (a sum over N samples is the mean with an "
        "N-times larger gradient).", D.loss_reduction, "--loss-reduction", OPTIM,
    ),  # fmt: skip
    optimizer: str = _opt(_choices("optimizer"), D.optimizer, "--optimizer", OPTIM),
    lr: float = _opt("Learning rate.", "the optimizer's default", "--lr", OPTIM),
    momentum: float = _opt(f"Momentum {_uses('momentum')}.", "0.9 for momentum and nesterov, 0 (none) for sgd",
                           "--momentum", OPTIM),  # fmt: skip
    beta1: float = _opt(f"Decay of the gradient's running mean {_uses('beta1')}.", 0.9, "--beta1", OPTIM),
    beta2: float = _opt(f"Decay of the squared gradient's running mean (lion: of the momentum) {_uses('beta2')}.",
                        "0.999; lion 0.99", "--beta2", OPTIM),  # fmt: skip
    eps: float = _opt(f"Added to the denominator {_uses('eps')}.", "1e-8; adadelta 1e-6", "--eps", OPTIM),
    rho: float = _opt(f"Decay of the squared gradient's (adadelta: and update's) running mean {_uses('rho')}.",
                      0.9, "--rho", OPTIM),  # fmt: skip
    initial_accumulator_value: float = _opt(
        f"Starting value of the sum of squared gradients {_uses('initial_accumulator_value')}.", 0.0,
        "--initial-accumulator-value", OPTIM,
    ),  # fmt: skip
    bias_correction: bool = _opt(f"Correct the running means' bias towards 0 early on {_uses('bias_correction')}.",
                                 True, "--bias-correction/--no-bias-correction", OPTIM),  # fmt: skip
    momentum_decay: float = _opt(f"NAdam's momentum schedule: mu_t = beta1 (1 - 0.96^(t momentum_decay) / 2) "
                                 f"{_uses('momentum_decay')}.", 0.004, "--momentum-decay", OPTIM),  # fmt: skip
    decoupled_weight_decay: bool = _opt(
        f"Weight decay shrinks the weights (as AdamW) instead of adding to the gradient "
        f"{_uses('decoupled_weight_decay')}.", False, "--decoupled-weight-decay/--no-decoupled-weight-decay", OPTIM,
    ),  # fmt: skip
    epochs: int = _opt("Number of epochs.", D.epochs, "--epochs", OPTIM),
    batch_size: str = _opt("Batch size: a number, or 'full' for batch gradient descent.", D.batch_size,
                           "--batch-size", OPTIM),  # fmt: skip
    schedule: str = _opt(_choices("schedule"), D.schedule, "--schedule", SCHEDULE),
    warmup_epochs: float = _opt("Epochs of linear warm-up from 0 to lr (every schedule but onecycle).", 0.0,
                                "--warmup-epochs", SCHEDULE),  # fmt: skip
    gamma: float = _opt(f"Factor the lr is multiplied by at each decay {_uses('gamma')}.",
                        "0.1 for step and plateau; exponential: the last epoch at 1% of lr", "--gamma",
                        SCHEDULE),  # fmt: skip
    step_size: float = _opt(f"Epochs between decays (step), or half a cycle (cyclic) {_uses('step_size')}.",
                            "step: milestones at 1/3 and 2/3 of the run; cyclic: 2", "--step-size",
                            SCHEDULE),  # fmt: skip
    milestones: str = _opt(f"Epochs at which the lr is multiplied by gamma, e.g. 10,20 {_uses('milestones')}.",
                           "1/3 and 2/3 of the run", "--milestones", SCHEDULE),  # fmt: skip
    floor: float = _opt(f"The lr cosine annealing ends at {_uses('floor')}.", 0.0, "--floor", SCHEDULE),
    base_lr: float = _opt(f"The lowest lr of a cycle; lr is the highest {_uses('base_lr')}.", "0.01 * lr",
                          "--base-lr", SCHEDULE),  # fmt: skip
    pct_start: float = _opt(f"Fraction of the run spent rising to lr {_uses('pct_start')}.", 0.3, "--pct-start",
                            SCHEDULE),  # fmt: skip
    div_factor: float = _opt(f"The first lr is lr / div_factor {_uses('div_factor')}.", 25.0, "--div-factor",
                             SCHEDULE),  # fmt: skip
    final_div_factor: float = _opt(
        f"The last lr is lr / (div_factor * final_div_factor) {_uses('final_div_factor')}.", 1e4,
        "--final-div-factor", SCHEDULE,
    ),  # fmt: skip
    monitor: str = _opt(f"The epoch metric whose plateau lowers the lr: {_choices('monitor')} {_uses('monitor')}.",
                        D.monitor, "--monitor", SCHEDULE),  # fmt: skip
    patience: int = _opt(f"Epochs without improvement of --monitor before the lr drops by --gamma "
                         f"{_uses('patience')}.", 10, "--patience", SCHEDULE),  # fmt: skip
    threshold: float = _opt(f"How much better counts as an improvement {_uses('threshold')}.", 1e-4, "--threshold",
                            SCHEDULE),  # fmt: skip
    threshold_mode: str = _opt(f"rel: better than best * (1 -+ threshold); abs: best -+ threshold "
                               f"{_uses('threshold_mode')}.", D.threshold_mode, "--threshold-mode",
                               SCHEDULE),  # fmt: skip
    cooldown: int = _opt(f"Epochs after a drop before epochs without improvement count again {_uses('cooldown')}.",
                         0, "--cooldown", SCHEDULE),  # fmt: skip
    min_lr: float = _opt(f"The lr never drops below this {_uses('min_lr')}.", 0.0, "--min-lr", SCHEDULE),
    l1: float = _opt("L1 regularisation strength on weights.", D.l1, "--l1", REGULAR),
    l2: float = _opt("L2 regularisation strength on weights.", D.l2, "--l2", REGULAR),
    include_all: bool = _opt("L1/L2 penalise biases and batch-norm parameters too, not weights only.", False,
                             "--include-all/--no-include-all", REGULAR),  # fmt: skip
    weight_decay: float = _opt("Weight decay on weights (decoupled for adamw, lion and with --decoupled-weight-decay, "
                               "added to the gradient otherwise).",
                               "0.01 for adamw, 0 otherwise", "--weight-decay", REGULAR),  # fmt: skip
    decay_all: bool = _opt("Weight decay on biases and batch-norm parameters too (PyTorch's default).", False,
                           "--decay-all/--no-decay-all", REGULAR),  # fmt: skip
    dropout: float = _opt("Dropout probability after each hidden layer.", D.dropout, "--dropout", REGULAR),
    label_smoothing: float = _opt(f"Spread this much of each target over all classes {_uses('label_smoothing')}.",
                                  D.label_smoothing, "--label-smoothing", REGULAR),  # fmt: skip
    clip_norm: float = _opt("Clip the gradient to this global norm.", "no clipping", "--clip-norm", REGULAR),
    clip_value: float = _opt("Clip each gradient element to [-v, v].", "no clipping", "--clip-value", REGULAR),
    early_stopping: int = _opt("Stop after this many epochs with no better val_loss (0: off).", 0,
                               "--early-stopping", REGULAR),  # fmt: skip
    device: str = _opt("cpu, cuda, cuda:N or auto.", D.device, "--device", RUN),
    dtype: str = _opt(_choices("dtype"), D.dtype, "--dtype", RUN),
    seed: int = _opt("Random seed (weights, shuffling, dropout).", D.seed, "--seed", RUN),
    sync_batch_norm: bool = _opt(
        "Under mpiexec: batch norm normalises over the global batch (as one process), not each rank's shard.",
        False, "--sync-batch-norm/--no-sync-batch-norm", RUN,
    ),  # fmt: skip
    checkpoint_every: str = _opt(
        "Also checkpoint every N steps (500) or every span of time (30s, 10m, 2h), so that a hard kill loses at "
        "most that much.", "at each epoch's end", "--checkpoint-every", RUN,
    ),  # fmt: skip
    callbacks: list[str] = typer.Option(
        None, "--callbacks", help="A Trainer.fit callback as package.module:name (a Callback class, a callback object "
        "or a function(epoch, logs)), looked up from the current folder too; repeat for several.",
        show_default=False, rich_help_panel=RUN,
    ),  # fmt: skip
    config: Path = typer.Option(None, "--config", help="TOML file with any of these options; flags override it.",
                                rich_help_panel=RUN),  # fmt: skip
    out: str = _opt("Output folder.", "runs/<timestamp>-<model>", "--out", RUN),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its model.npz.",
                                rich_help_panel=RUN),  # fmt: skip
    overwrite: bool = typer.Option(
        False, "--overwrite",
        help="Replace the run already in --out (its files stay if the new run fails before writing its own).",
        rich_help_panel=RUN,
    ),  # fmt: skip
    resume_if_exists: bool = typer.Option(
        False, "--resume-if-exists",
        help="Start the run in --out, or continue it if --out holds it already: a job script can be requeued as is. "
        "--epochs (raise it to train on), --device, --checkpoint-every, --quiet and --data-dir may differ from the "
        "saved run; a folder holding a run of any other configuration is refused.",
        rich_help_panel=RUN,
    ),  # fmt: skip
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the final summary.", rich_help_panel=RUN),
) -> None:
    """Train a model and write metrics.json, history.csv, model.npz, config.toml and curves.png.

    An --out folder holding a run is refused unless --resume, --overwrite or --resume-if-exists says what to do.

    Ctrl-C, SIGTERM, SIGHUP, SIGUSR1: training stops after the step, saves the run, exits 130, 143, 129, 138.

    An option that the chosen optimizer, loss, schedule or model does not read is refused; `xnet options` lists them.
    """
    flags = {k: v for k, v in locals().items() if k not in NOT_CONFIG and v is not None}
    given = [name for name, on in (("--resume", resume), ("--overwrite", overwrite),
                                   ("--resume-if-exists", resume_if_exists)) if on]  # fmt: skip
    if len(given) > 1:
        from xnet.errors import XnetError

        raise XnetError(f"{' and '.join(given)} each say what to do with the run in --out: pass one of them")
    from xnet.train.stop_signals import raising_stop_signals

    with raising_stop_signals():  # SIGTERM before or after training: one line, exit 143 (fit stops after a step)
        _train(config, flags, resume, overwrite, resume_if_exists)


def _train(config: Path | None, flags: dict, resume: bool, overwrite: bool, resume_if_exists: bool) -> None:
    """`xnet train` once its flags are read: resolve the configuration, train, report."""
    from xnet.parallel.agree import agreement
    from xnet.parallel.world import current_world

    world = current_world()  # None unless mpiexec started several processes (then see xnet/parallel/)
    with agreement(world, "reading the configuration"):
        cfg = resolve_config(config, flags, resume)
    from xnet.runs.run import run_training
    if resume_if_exists:
        resume = _requeued(cfg, world)
        if resume is None:
            return
    from xnet.train.progress import Reporter, make_reporter

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
    if result.interrupted:
        if root:
            print(stopped_line(result.trainer, result.out_dir, resume_if_exists))
        raise typer.Exit(128 + (result.trainer.stop_signal or signal.SIGINT))


def _requeued(cfg: RunConfig, world: Any) -> bool | None:
    """--resume-if-exists: whether to continue the run in --out; None when it is complete (said, nothing to do)."""
    from xnet.parallel.agree import RankError, agreement
    from xnet.runs.requeue import DONE, RESUME, requeue_action

    with agreement(world, "looking for the run to continue"):  # every rank reads the folder, as --resume does
        kind, done = requeue_action(cfg)
    if world is not None:  # a rank that sees another folder than rank 0's would train another model
        seen = world.allgather_objects((kind, done), "looking for the run to continue")
        other = next((rank for rank, found in enumerate(seen) if found != seen[0]), None)
        if other is not None:
            raise RankError(
                f"--resume-if-exists: rank {other} of {world.size} finds {seen[other]} in {cfg.out}, rank 0 "
                f"{seen[0]}: put --out on storage that every rank shares"
            )
    if kind == DONE:
        if world is None or world.is_root:
            print(f"{cfg.out} holds this run, complete ({done} epoch{'s' * (done != 1)}): nothing to do "
                  "(raise --epochs to train on)")  # fmt: skip
        return None
    return kind == RESUME


def stopped_line(trainer: Any, out_dir: Path, requeue: bool = False) -> str:
    """The one line saying why training stopped, where its checkpoint is and how to continue."""
    from xnet.train.stop_signals import signal_name

    signum = trainer.stop_signal
    why = "interrupted" if signum in (None, signal.SIGINT) else f"stopped by {signal_name(signum)}"
    step, epoch = trainer.step_in_epoch, trainer.epoch
    at = f"epoch {epoch + 1}, step {step}" if step else f"the end of epoch {epoch}"
    again = " (or run the same command again)" if requeue else ""
    return (
        f"{why}: checkpoint saved to {out_dir / 'model.npz'} ({at}); resume with: "
        f"xnet train --resume --out {out_dir}{again}"
    )


def resolve_config(config: Path | None, flags: dict, resume: bool) -> RunConfig:
    """Defaults < checkpoint's config (when resuming) < config file < flags, validated."""
    from xnet.config import config_dict_from_toml, validate

    base: dict = {}
    if resume:
        if "out" not in flags:
            raise typer.BadParameter("--resume needs --out DIR naming the run to continue")
        from xnet.runs.restore import saved_config
        from xnet.train.checkpoint import load_checkpoint

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
    ranks = metrics.get("ranks", 1)
    where = metrics["device"] if ranks == 1 else f"{ranks} ranks ({metrics['device']} each)"
    if not metrics["epochs"]:  # stopped in its first epoch: no loss or accuracy recorded yet
        return f"stopped before its first epoch ended, on {where}; outputs in {out_dir}"
    if metrics["task"] == "regression":
        head = f"test MSE {metrics['test_loss']:.4g}"
    elif metrics["test_accuracy"] is not None:
        head = f"test accuracy {metrics['test_accuracy']:.2%} (loss {metrics['test_loss']:.4f})"
    else:
        head = f"train accuracy {metrics['train_accuracy']:.2%}"
    return f"{head} after {n} epoch{'s' * (n != 1)} in {secs:.1f}s on {where}; outputs in {out_dir}"
