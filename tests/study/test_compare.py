"""`xnet compare` through the real entry point: outputs, seeds, resume, divergence, bad input."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "cli"))
from clirun import one_line_error, xnet  # noqa: E402

from xnet.errors import ConfigError  # noqa: E402
from xnet.study import load_study, run_folder_name  # noqa: E402
from xnet.study.summary import SUMMARY_COLUMNS  # noqa: E402
from xnet.train import load_checkpoint  # noqa: E402

MD_COLUMNS = ["variant", "final test acc", "best test acc", "final train acc", "test loss", "epochs", "seconds",
              "params", "status"]  # fmt: skip
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

MNIST_STUDY = """
name = "two"
description = "relu against zeros init"
[base]
epochs = 1
limit = 1200
hidden = [16]
batch_size = 32
schedule = "constant"
[[variants]]
name = "relu"
[[variants]]
name = "zeros init"
init = "zeros"
"""

SINE_STUDY = """
name = "sine"
[base]
dataset = "sine"
loss = "mse"
hidden = [8]
batch_size = 32
epochs = 3
schedule = "constant"
[[variants]]
name = "adam"
optimizer = "adam"
lr = 0.01
[[variants]]
name = "sgd too fast"
optimizer = "sgd"
lr = 10.0
"""


def _write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _csv_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def _md_table(out: Path) -> list[list[str]]:
    rows = [line for line in (out / "summary.md").read_text().splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in rows]


@pytest.fixture
def mnist_study(mnist_dir, tmp_path):
    study, out = _write(tmp_path, MNIST_STUDY), tmp_path / "out"
    r = xnet("compare", study, "--out", out)
    assert r.code == 0, r.err
    return study, out, r


def test_study_writes_table_csv_curves_and_run_folders(mnist_study):
    _, out, r = mnist_study
    for variant in ("relu", "zeros-init"):
        for name in ("metrics.json", "history.csv", "model.npz", "config.toml"):
            assert (out / variant / name).is_file(), (variant, name)
    assert (out / "curves.png").read_bytes()[:8] == PNG_MAGIC
    table = _md_table(out)
    assert table[0] == MD_COLUMNS
    body = {row[0]: dict(zip(MD_COLUMNS, row, strict=True)) for row in table[2:]}
    assert set(body) == {"relu", "zeros init"}
    assert body["relu"]["status"] == "ok" and body["relu"]["epochs"] == "1"
    assert body["relu"]["params"] == str(784 * 16 + 16 + 16 * 10 + 10)
    rows = {row["variant"]: row for row in _csv_rows(out)}
    assert list(_csv_rows(out)[0]) == list(SUMMARY_COLUMNS)
    relu = json.loads((out / "relu" / "metrics.json").read_text())
    assert float(rows["relu"]["test_accuracy"]) == pytest.approx(relu["test_accuracy"])
    assert float(rows["relu"]["train_accuracy"]) == pytest.approx(relu["train_accuracy"])
    # one epoch on 1200 samples: 0.46-0.57 over seeds 0-4, against 0.1 for guessing
    assert float(rows["relu"]["test_accuracy"]) > 0.3
    # all-zero weights cannot break the symmetry: the row says so instead of the study failing
    assert float(rows["zeros init"]["test_accuracy"]) < 0.15
    assert rows["zeros init"]["status"] == body["zeros init"]["status"] == "no learning"
    assert "| relu |" in r.out and "summary.md" in r.out


def test_rerun_skips_finished_variants_and_reruns_changed_ones(mnist_study):
    study, out, _ = mnist_study
    relu_metrics = out / "relu" / "metrics.json"
    before = relu_metrics.stat().st_mtime_ns
    zeros_dir = out / "zeros-init"
    for f in zeros_dir.iterdir():  # as if the study had been killed before this variant ran
        f.unlink()
    zeros_dir.rmdir()
    r = xnet("compare", study, "--out", out)
    assert r.code == 0, r.err
    assert relu_metrics.stat().st_mtime_ns == before, "a finished variant was trained again"
    assert "== relu: finished earlier, not run again" in r.out
    assert (zeros_dir / "metrics.json").is_file()
    assert {row["variant"] for row in _csv_rows(out)} == {"relu", "zeros init"}
    # another epoch budget is another experiment: both variants run again, and replace their old files
    (out / "relu" / "best.npz").write_bytes(b"from an earlier run")
    r = xnet("compare", study, "--out", out, "--epochs", "2", "--quiet")
    assert r.code == 0, r.err
    # every run keeps a best.npz: this one is the new run's, not the planted file
    assert load_checkpoint(out / "relu" / "best.npz")["trainer"]["epoch"] in (1, 2)
    assert relu_metrics.stat().st_mtime_ns != before
    assert json.loads(relu_metrics.read_text())["epochs_completed"] == 2


def test_repeat_reports_mean_and_std_over_seeds(mnist_dir, tmp_path):
    study = _write(tmp_path, MNIST_STUDY.replace("limit = 1200", "limit = 600"))
    out = tmp_path / "out"
    r = xnet("compare", study, "--out", out, "--repeat", "2", "--quiet")
    assert r.code == 0, r.err
    assert (out / "relu").is_dir() and (out / "relu-seed1").is_dir()
    seeds = [json.loads((out / d / "metrics.json").read_text()) for d in ("relu", "relu-seed1")]
    assert [m["seed"] for m in seeds] == [0, 1]
    assert seeds[0]["train_loss"] != seeds[1]["train_loss"]
    row = next(row for row in _csv_rows(out) if row["variant"] == "relu")
    accs = [m["test_accuracy"] for m in seeds]
    assert row["runs"] == "2"
    assert float(row["test_accuracy"]) == pytest.approx(sum(accs) / 2)
    assert float(row["test_accuracy_std"]) == pytest.approx(abs(accs[0] - accs[1]) / 2**0.5)
    assert "Mean over 2 seeds" in (out / "summary.md").read_text()
    assert " ± " in (out / "summary.md").read_text()


def test_a_validation_split_gets_its_own_column_first(mnist_dir, tmp_path):
    study = _write(tmp_path, MNIST_STUDY.replace("limit = 1200", "limit = 600\nval_split = 0.2"))
    out = tmp_path / "out"
    assert xnet("compare", study, "--out", out, "--quiet").code == 0
    table = _md_table(out)
    assert table[0] == ["variant", "final val acc", *MD_COLUMNS[1:]]
    relu = json.loads((out / "relu" / "metrics.json").read_text())
    row = next(r for r in table[2:] if r[0] == "relu")
    assert row[1] == f"{100 * relu['val_accuracy']:.2f}%" and row[2] == f"{100 * relu['test_accuracy']:.2f}%"
    assert float(next(r for r in _csv_rows(out) if r["variant"] == "relu")["val_accuracy"]) == pytest.approx(
        relu["val_accuracy"]
    )


def test_diverging_variant_is_a_row_not_a_crash(tmp_path):
    study, out = _write(tmp_path, SINE_STUDY), tmp_path / "out"
    r = xnet("compare", study, "--out", out, "--quiet")
    assert r.code == 0, r.err
    rows = {row["variant"]: row for row in _csv_rows(out)}
    assert rows["adam"]["status"] == "ok" and float(rows["adam"]["test_loss"]) > 0
    assert rows["sgd too fast"]["status"] == "diverged"
    assert rows["sgd too fast"]["test_loss"] == ""
    md = (out / "summary.md").read_text()
    assert "| sgd too fast |" in md and "diverged" in md and "lower learning rate" in md
    assert _md_table(out)[0][:3] == ["variant", "final test MSE", "final train loss"]
    assert (out / "predictions.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "curves.png").read_bytes()[:8] == PNG_MAGIC
    # a diverged run counts as finished: it is not retried on the next call
    mtime = (out / "sgd-too-fast" / "metrics.json").stat().st_mtime_ns
    assert xnet("compare", study, "--out", out, "--quiet").code == 0
    assert (out / "sgd-too-fast" / "metrics.json").stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[base]\nepochs = 1\n[grid]\nactivation = ['relu', 'swish']\n", "swish"),
        ("[base]\nepoch = 1\n[grid]\nactivation = ['relu']\n", "unknown key 'epoch'"),
        ("[base]\nepochs = 1\n[grid]\ninit = ['zeros', 'gaussian']\n", "gaussian"),
        ("[base]\nepochs = 1\n[grid]\nactivation = 'relu'\n", "non-empty list"),
        ("[base]\nepochs = 1\n", "needs a [grid] or [[variants]]"),
        ("[base]\nepochs = 0\n[grid]\nactivation = ['relu']\n", "epochs"),
        ("title = 'x'\n[grid]\nactivation = ['relu']\n", "unknown top-level key"),
        ("[[variants]]\nname = 'a b'\n[[variants]]\nname = 'a-b'\n", "share the folder"),
        ("[grid]\nactivation = ['relu'\n", "not valid TOML"),
    ],
)
def test_bad_study_is_one_line_and_exit_2(tmp_path, text, expected):
    line = one_line_error(xnet("compare", _write(tmp_path, text), "--out", tmp_path / "out"))
    assert expected in line
    assert not (tmp_path / "out").exists(), "nothing should run before the whole study is checked"


def test_missing_file_and_bad_repeat_are_one_line(tmp_path):
    assert "study file not found" in one_line_error(xnet("compare", tmp_path / "nope.toml"))
    study = _write(tmp_path, "[grid]\nactivation = ['relu']\n")
    assert "--repeat" in one_line_error(xnet("compare", study, "--repeat", "0"))


def test_grid_expands_every_combination_with_stable_names(tmp_path):
    study = load_study(_write(tmp_path, "[base]\nepochs = 2\n[grid]\nbatch_norm = [false, true]\n"
                                        "hidden = [[32], [64, 32]]\n"))  # fmt: skip
    names = [v.name for v in study.variants]
    assert names == ["batch_norm=false-hidden=32", "batch_norm=false-hidden=64,32",
                     "batch_norm=true-hidden=32", "batch_norm=true-hidden=64,32"]  # fmt: skip
    assert [v.config.hidden for v in study.variants] == [[32], [64, 32], [32], [64, 32]]
    assert all(v.config.epochs == 2 for v in study.variants)
    assert run_folder_name("batch 1 (SGD), lr 0.005") == "batch-1-SGD-lr-0.005"
    with pytest.raises(ConfigError, match="variant 'x'"):
        load_study(_write(tmp_path, "[[variants]]\nname = 'x'\ndropout = 1.5\n", "bad.toml"))


def test_interrupted_variant_continues_from_its_checkpoint(mnist_dir, tmp_path):
    import os
    import signal

    from xnet.study import StudyInterrupted, run_study
    from xnet.train.progress import Reporter

    study = load_study(_write(tmp_path, MNIST_STUDY.replace("epochs = 1", "epochs = 2")))
    study.variants = study.variants[:1]
    out = tmp_path / "out"

    class CtrlCAfterFirstEpoch(Reporter):
        def epoch_end(self, record):
            if record["epoch"] == 1:
                os.kill(os.getpid(), signal.SIGINT)  # the trainer stops after its current step

    with pytest.raises(StudyInterrupted, match="run the same `xnet compare` again"):
        run_study(study, out, reporter_factory=lambda name, k: CtrlCAfterFirstEpoch())
    first = json.loads((out / "relu" / "metrics.json").read_text())
    assert first["interrupted"] and first["epochs_completed"] == 1
    rows = run_study(study, out)
    done = json.loads((out / "relu" / "metrics.json").read_text())
    assert not done["interrupted"] and done["epochs_completed"] == 2
    assert done["epochs"][0] == first["epochs"][0], "epoch 1 was trained again instead of resumed"
    assert rows[0]["status"] == "ok" and rows[0]["epochs"] == 2


def test_loss_reduction_and_optimizer_options_are_grid_axes_that_train(tmp_path):
    study = _write(tmp_path, """
[base]
dataset = "sine"
loss = "mse"
hidden = [8]
batch_size = 32
epochs = 2
schedule = "constant"
optimizer = "adam"
[grid]
loss_reduction = ["mean", "sum"]
beta2 = [0.99]
""")  # fmt: skip
    out = tmp_path / "out"
    r = xnet("compare", study, "--out", out, "--quiet")
    assert r.code == 0, r.err
    rows = {row["variant"]: row for row in _csv_rows(out)}
    assert set(rows) == {"loss_reduction=mean-beta2=0.99", "loss_reduction=sum-beta2=0.99"}
    configs = [json.loads((out / name / "metrics.json").read_text())["config"] for name in
               ("loss_reduction=mean-beta2=0.99", "loss_reduction=sum-beta2=0.99")]  # fmt: skip
    assert [c["loss_reduction"] for c in configs] == ["mean", "sum"] and {c["beta2"] for c in configs} == {0.99}
    # adam's steps hardly depend on the gradient's scale, and a summed loss is reported per term: the two
    # test losses agree, where the sum over a batch of 32 would be 32 times the mean
    losses = [float(rows[name]["test_loss"]) for name in sorted(rows)]
    assert losses[0] == pytest.approx(losses[1], rel=0.01), losses


def test_a_run_finished_before_an_option_existed_counts_as_finished_at_its_default(tmp_path):
    from xnet.config import RunConfig, validate
    from xnet.study import finished_metrics

    cfg = validate(RunConfig(dataset="sine", loss="mse"))
    saved = {k: v for k, v in cfg.to_dict().items() if k not in ("loss_reduction", "beta1", "milestones")}
    (tmp_path / "metrics.json").write_text(json.dumps({"config": saved, "epochs": []}))
    assert finished_metrics(tmp_path, cfg) is not None
    assert finished_metrics(tmp_path, cfg.replace(loss_reduction="sum")) is None
