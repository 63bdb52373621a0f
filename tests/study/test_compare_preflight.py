"""`xnet compare` builds every variant before training any; run folders, summaries and names stay
coherent: a diverged `xnet train` folder is a run, the summary says what the runs really used,
figures are claimed only when drawn, folder names keep letters of every script."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "cli"))
from clirun import one_line_error, xnet  # noqa: E402

from xnet.errors import ConfigError  # noqa: E402
from xnet.study import load_study, run_folder_name, run_study  # noqa: E402

MNIST_BASE = """
name = "pre"
[base]
epochs = 1
limit = 120
batch_size = 32
schedule = "constant"
[[variants]]
name = "ok"
hidden = [8]
"""

SINE_BASE = """
name = "sine"
notes = "3 epochs per run."
[base]
dataset = "sine"
loss = "mse"
hidden = [4]
epochs = 3
batch_size = 64
schedule = "constant"
"""

# full-batch SGD at lr 0.3 on sine finishes 3 epochs, then its loss overflows in epoch 4 (seed 0)
DIVERGES_LATE = ("--dataset", "sine", "--loss", "mse", "--hidden", "8", "--epochs", "10", "--optimizer", "sgd",
                 "--lr", "0.3", "--batch-size", "full", "--schedule", "constant", "-q")  # fmt: skip


def _study(folder: Path, text: str, name: str = "study.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _layers(*layers: str) -> str:
    return "".join(f"[[variants.model.layers]]\n{layer}\n" for layer in layers)


FLATTEN = 'type = "flatten"'


# -- 1. every variant is built on its data before any trains ----------------------------------------


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ('hidden = [8]\ndataset = "sine"', "loss 'cross-entropy' needs class labels, but 'sine' is a regression task"),
        ('model = "cnn"\ndataset = "sine"\nloss = "mse"', "cnn: needs image inputs"),
        (_layers(FLATTEN, 'type = "dense"\nin_features = 100\nout_features = 10'), "does not fit the data"),
        (_layers(FLATTEN, 'type = "dense"\nin_features = 784\nout_features = 5'),
         "outputs 5 values but the dataset has 10 classes"),
        ("hidden = [8]\nwarmup_epochs = 0.9", "warmup_epochs: a warmup of"),
        ('hidden = [8]\noptimizer = "nesterov"\nmomentum = 0.0', "momentum"),
        # a floor above adam's default lr: known once the optimizer is built (clip_norm = -1 used to be
        # such a case; the configuration check catches it now, before any data is read)
        ('hidden = [8]\nschedule = "cosine"\nfloor = 0.5', "floor (the final lr) must be <= lr=0.001"),
        ("hidden = [1000000000000]", "out of memory"),
        ('hidden = [8]\ndataset = "csv:UNLABELLED"', "the data has no labels"),
    ],
)  # fmt: skip
def test_a_later_variant_that_cannot_train_stops_the_study_before_any_trains(mnist_dir, tmp_path, bad, expected):
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text("a,b,c,d\n" + "".join(f"{i},{i},{i},{i}\n" for i in range(20)))
    body = MNIST_BASE + '[[variants]]\nname = "bad"\n' + bad.replace("UNLABELLED", str(unlabelled)) + "\n"
    out = tmp_path / "out"
    line = one_line_error(xnet("compare", _study(tmp_path, body), "--out", out, "-q"))
    assert line.startswith("xnet: error: variant 'bad': ") and expected in line, line
    assert not out.exists(), "variant 'ok' trained (or a folder was made) before the bad one was found"


def test_the_first_bad_variant_in_the_study_is_the_one_reported(mnist_dir, tmp_path):
    # checked grouped by data (mnist first), yet the sine variant, earlier in the file, is named
    body = (MNIST_BASE + '[[variants]]\nname = "bad1"\nhidden = [8]\ndataset = "sine"\n'
            '[[variants]]\nname = "bad2"\nhidden = [8]\nschedule = "cosine"\nfloor = 0.5\n')  # fmt: skip
    line = one_line_error(xnet("compare", _study(tmp_path, body), "--out", tmp_path / "out", "-q"))
    assert "variant 'bad1': loss 'cross-entropy'" in line
    assert not (tmp_path / "out").exists()


def test_checks_and_trainings_share_the_data_of_variants_on_the_same_data(mnist_dir, tmp_path, monkeypatch):
    from xnet import data

    calls = []
    real = data.load_dataset
    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: calls.append(a) or real(*a, **k))
    body = MNIST_BASE + "[grid]\nhidden = [[4], [5], [6], [7]]\n"
    rows = run_study(load_study(_study(tmp_path, body)), tmp_path / "out")
    assert len(rows) == 5 and all((d / "model.npz").is_file() for r in rows for d in r["dirs"])
    assert len(calls) <= 2, f"MNIST was read {len(calls)} times for 5 variants on the same data"


def test_checking_first_does_not_change_what_a_variant_learns(tmp_path):
    body = SINE_BASE + '[[variants]]\nname = "a"\nlr = 0.01\n[[variants]]\nname = "b"\nlr = 0.02\n'
    assert xnet("compare", _study(tmp_path, body), "--out", tmp_path / "out", "-q").code == 0
    args = ("--dataset", "sine", "--loss", "mse", "--hidden", "4", "--epochs", "3", "--batch-size", "64",
            "--schedule", "constant", "--lr", "0.02", "-q")  # fmt: skip
    assert xnet("train", *args, "--out", tmp_path / "alone").code == 0
    study_run = json.loads((tmp_path / "out" / "b" / "metrics.json").read_text())
    alone = json.loads((tmp_path / "alone" / "metrics.json").read_text())
    assert study_run["test_loss"] == alone["test_loss"]


# -- 2. a run that diverges after finished epochs is a coherent run folder -------------------------


def test_divergence_after_finished_epochs_records_them_beside_the_checkpoint(tmp_path):
    out = tmp_path / "run"
    line = one_line_error(xnet("train", *DIVERGES_LATE, "--out", out), code=3)
    assert "diverged" in line and "epoch 4" in line
    assert f"checkpoint is kept in {out / 'model.npz'}" in line and "3 finished epochs in metrics.json" in line
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"].startswith("diverged: ") and metrics["epochs_completed"] == 3
    assert [r["epoch"] for r in metrics["epochs"]] == [1, 2, 3]
    with open(out / "history.csv", newline="") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2", "3"]
    r = xnet("plot", out, "-o", tmp_path / "c.png")
    assert r.code == 0, r.err
    assert (tmp_path / "c.png").is_file()
    assert "already holds a run" in one_line_error(xnet("train", *DIVERGES_LATE, "--out", out))


def test_a_study_records_a_late_divergence_the_same_way(tmp_path):
    body = SINE_BASE.replace("epochs = 3", "epochs = 10").replace("batch_size = 64", 'batch_size = "full"').replace(
        "hidden = [4]", "hidden = [8]"
    ) + '[[variants]]\nname = "fast"\noptimizer = "sgd"\nlr = 0.3\n'
    out = tmp_path / "out"
    assert xnet("compare", _study(tmp_path, body), "--out", out, "-q").code == 0
    metrics = json.loads((out / "fast" / "metrics.json").read_text())
    assert metrics["status"].startswith("diverged: training diverged") and metrics["epochs_completed"] == 3
    assert "checkpoint is kept" not in metrics["status"]
    assert (out / "fast" / "history.csv").read_text().count("\n") == 4  # header and 3 epochs


def test_plot_of_a_run_that_diverged_in_its_first_epoch_says_so(tmp_path):
    body = SINE_BASE + '[[variants]]\nname = "boom"\noptimizer = "sgd"\nlr = 1e6\n'
    out = tmp_path / "out"
    assert xnet("compare", _study(tmp_path, body), "--out", out, "-q").code == 0
    assert "has no finished epochs" in one_line_error(xnet("plot", out / "boom", "-o", tmp_path / "c.png"))


# -- 3. the summary describes the settings the runs used --------------------------------------------


def test_summary_states_the_command_line_overrides(tmp_path):
    body = SINE_BASE + '[[variants]]\nname = "a"\nlr = 0.01\n'
    out = tmp_path / "out"
    r = xnet("compare", _study(tmp_path, body), "--out", out, "-q", "--epochs", "1", "--limit", "60")
    assert r.code == 0, r.err
    md = (out / "summary.md").read_text()
    assert "Runs: dataset sine, first 60 training samples; 1 epoch per run; seed 0." in md
    assert "Set on the command line for every variant (overriding the study file and its notes): " \
           "--epochs 1 --limit 60." in md  # fmt: skip
    assert "Runs: dataset sine" in r.out and "--limit 60" in r.out
    plain = tmp_path / "plain"
    assert xnet("compare", _study(tmp_path, body), "--out", plain, "-q").code == 0
    md = (plain / "summary.md").read_text()
    assert "Runs: dataset sine; 3 epochs per run; seed 0." in md and "command line" not in md


# -- 4. figures are claimed and embedded only when drawn --------------------------------------------


def test_without_matplotlib_no_figure_is_claimed_or_embedded(tmp_path, monkeypatch):
    from xnet.plots import curves as plots
    from xnet.plots import study as study_plots

    monkeypatch.setattr(plots, "have_matplotlib", lambda: False)
    monkeypatch.setattr(study_plots, "have_matplotlib", lambda: False)
    body = SINE_BASE.replace("epochs = 3", "epochs = 1") + '[[variants]]\nname = "a"\nlr = 0.01\n'
    out = tmp_path / "out"
    r = xnet("compare", _study(tmp_path, body), "--out", out, "-q")
    assert r.code == 0, r.err
    assert r.out.strip().splitlines()[-1] == f"wrote {out / 'summary.md'}, summary.csv"
    assert not (out / "curves.png").exists() and not (out / "predictions.png").exists()
    assert "![" not in (out / "summary.md").read_text() and "![" not in r.out


def test_with_matplotlib_the_figures_written_are_named_and_embedded(tmp_path):
    pytest.importorskip("matplotlib")
    body = SINE_BASE.replace("epochs = 3", "epochs = 1") + '[[variants]]\nname = "a"\nlr = 0.01\n'
    out = tmp_path / "out"
    r = xnet("compare", _study(tmp_path, body), "--out", out, "-q")
    assert r.out.strip().splitlines()[-1] == f"wrote {out / 'summary.md'}, summary.csv, curves.png and predictions.png"
    md = (out / "summary.md").read_text()
    assert "![curves](curves.png)" in md and "![predictions](predictions.png)" in md
    assert (out / "curves.png").is_file() and (out / "predictions.png").is_file()


# -- 5. folder names keep letters and digits of every script ----------------------------------------


def test_non_ascii_study_and_variant_names_keep_their_letters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    body = SINE_BASE.replace('name = "sine"', 'name = "ünï"').replace("epochs = 3", "epochs = 1")
    body += '[[variants]]\nname = "α"\nlr = 0.01\n[[variants]]\nname = "β"\nlr = 0.02\n'
    r = xnet("compare", _study(tmp_path, body), "-q")
    assert r.code == 0, r.err
    assert sorted(p.name for p in (tmp_path / "studies" / "ünï").iterdir() if p.is_dir()) == ["α", "β"]


def test_folder_names_of_any_script_still_refuse_separators_dots_and_control_characters(tmp_path):
    assert run_folder_name("ünï") == "ünï" and run_folder_name("学习率 0.1") == "学习率-0.1"
    assert run_folder_name("e\u0301") == "é"  # a combining accent joins its letter
    for name, folder in (("a/b", "a-b"), ("a\\b", "a-b"), ("a\tb\x07", "a-b"), ("..", "variant"), ("／", "variant")):
        assert run_folder_name(name) == folder
    with pytest.raises(ConfigError, match="control character"):
        load_study(_study(tmp_path, SINE_BASE + '[[variants]]\nname = "a\\tb"\n'))
    line = one_line_error(xnet("compare", _study(tmp_path, SINE_BASE + '[[variants]]\nname = "α/.."\n')))
    assert "cannot name the variant's folder" in line


def test_a_folder_name_too_long_for_the_file_system_fails_before_training(tmp_path):
    body = SINE_BASE + '[[variants]]\nname = "ok"\n[[variants]]\nname = "' + "α" * 130 + '"\n'
    out = tmp_path / "out"
    line = one_line_error(xnet("compare", _study(tmp_path, body), "--out", out, "-q"))
    assert "longer than the 255 bytes" in line
    assert not out.exists()
