"""`xnet plot` on malformed or empty run folders and bad output paths: one-line errors, no stray files."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
from clirun import one_line_error, xnet

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def epoch(n: int, loss: float = 1.0, **extra) -> dict:
    """One epoch record as `xnet train` writes it in metrics.json."""
    return {"epoch": n, "train_loss": loss, "train_accuracy": 0.5, "lr": 0.001, "seconds": 0.01, **extra}


def make_run(folder: Path, epochs: list | None = None, raw: bytes | None = None) -> Path:
    """A run folder holding a metrics.json: the `xnet train` layout with `epochs`, or `raw` bytes as given."""
    folder.mkdir(parents=True, exist_ok=True)
    if raw is None:
        metrics = {"test_accuracy": None, "epochs": epochs, "epochs_completed": len(epochs or []), "task": "x"}
        raw = json.dumps(metrics).encode()
    (folder / "metrics.json").write_bytes(raw)
    return folder


def leftovers(folder: Path) -> list[str]:
    """Files in `folder` other than run folders: a failed plot must leave none (no temporary files either)."""
    return sorted(p.name for p in folder.iterdir() if not p.is_dir())


@pytest.fixture
def ok_run(tmp_path) -> Path:
    return make_run(tmp_path / "ok", [epoch(1, 2.0), epoch(2, 1.5)])


@pytest.fixture
def captured(monkeypatch):
    """The histories `xnet plot` hands to the figure writer, by label (the file is still written)."""
    from xnet.plots import curves as plots

    seen: dict = {}
    real = plots.plot_histories

    def spy(histories, path):
        seen.update(histories)
        return real(histories, path)

    monkeypatch.setattr(plots, "plot_histories", spy)
    return seen


MALFORMED = [
    pytest.param(b'{"a": 1}', 'no "epochs" key', id="no-epochs-key"),
    pytest.param(b'{"epochs": "abc"}', '"epochs" is "abc", expected a list', id="epochs-string"),
    pytest.param(b'{"epochs": null}', '"epochs" is null, expected a list', id="epochs-null"),
    pytest.param(b'{"epochs": [1, 2]}', "epochs[0] is 1, expected an object", id="record-not-object"),
    pytest.param(b'{"epochs": [{"train_loss": 1.0}]}', 'epochs[0]["epoch"] is missing', id="no-epoch-number"),
    pytest.param(b'{"epochs": [{"epoch": "one"}]}', 'epochs[0]["epoch"] is "one"', id="epoch-string"),
    pytest.param(b"[1, 2]", "expected a JSON object, got [1, 2]", id="json-list"),
    pytest.param(b"\xff\xfe", "not UTF-8 text", id="binary"),
    pytest.param(b"", "the file is empty", id="empty-file"),
    pytest.param(b"{garbage", "not valid JSON", id="bad-json"),
    pytest.param(
        b'{"epochs": [{"epoch": 1, "train_loss": "high"}]}',
        'epochs[0]["train_loss"] is "high", expected a number',
        id="string-loss",
    ),  # fmt: skip
    pytest.param(
        b'{"epochs": [{"epoch": 1, "train_loss": 1.0, "val_accuracy": true}]}',
        'epochs[0]["val_accuracy"] is true',
        id="bool-accuracy",
    ),  # fmt: skip
]


@pytest.mark.parametrize(("raw", "problem"), MALFORMED)
def test_malformed_metrics_is_one_line_naming_the_file(tmp_path, raw, problem):
    run = make_run(tmp_path / "run", raw=raw)
    png = tmp_path / "curves.png"
    line = one_line_error(xnet("plot", run, "-o", png))
    assert f"{run / 'metrics.json'}: not an xnet run's metrics (" in line
    assert problem in line
    assert leftovers(tmp_path) == []


def test_malformed_run_among_good_ones_keeps_the_old_image(tmp_path, ok_run):
    bad = make_run(tmp_path / "bad", raw=b'{"epochs": [{"train_loss": 1.0}]}')
    png = tmp_path / "curves.png"
    png.write_bytes(b"old image")
    line = one_line_error(xnet("plot", ok_run, bad, "-o", png))
    assert str(bad / "metrics.json") in line
    assert png.read_bytes() == b"old image"
    assert leftovers(tmp_path) == ["curves.png"]


def test_negative_loss_is_plotted_on_a_linear_axis_without_warnings(tmp_path, monkeypatch):
    from xnet.plots import curves as plots

    scales = []
    real_save = plots._save
    monkeypatch.setattr(
        plots, "_save", lambda fig, path: (scales.append(fig.axes[0].get_yscale()), real_save(fig, path))
    )
    run = make_run(tmp_path / "neg", [epoch(1, -1.0), epoch(2, -2.0)])
    pos = make_run(tmp_path / "pos", [epoch(1, 2.0), epoch(2, 1.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a matplotlib warning (log axis of negative data) fails the test
        r = xnet("plot", run, "-o", tmp_path / "neg.png")
        assert r.code == 0, r.err
        assert r.err == ""
        assert xnet("plot", pos, "-o", tmp_path / "pos.png").code == 0
    assert (tmp_path / "neg.png").read_bytes()[:8] == PNG_MAGIC
    # linear for negative losses (a log axis would hide every point), log for positive ones as before
    assert scales == ["linear", "log"]


def test_non_finite_values_are_gaps_not_warnings(tmp_path):
    run = make_run(tmp_path / "run", raw=b'{"epochs": [{"epoch": 1, "train_loss": Infinity}, {"epoch": 2, '
                   b'"train_loss": 0.5, "test_loss": NaN}]}')  # fmt: skip
    png = tmp_path / "curves.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = xnet("plot", run, "-o", png)
    assert r.code == 0, r.err
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_runs_with_the_same_folder_name_get_distinct_labels(tmp_path, captured):
    a = make_run(tmp_path / "a" / "run", [epoch(1, 2.0)])
    b = make_run(tmp_path / "b" / "run", [epoch(1, 3.0)])
    c = make_run(tmp_path / "other", [epoch(1, 4.0)])
    png = tmp_path / "dup.png"
    r = xnet("plot", a, b, c, "-o", png)
    assert r.code == 0, r.err
    assert list(captured) == ["a/run", "b/run", "other"]
    assert [h[0]["train_loss"] for h in captured.values()] == [2.0, 3.0, 4.0]
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_run_labels_shortest_distinct_suffix(tmp_path):
    from xnet.cli.plot import run_labels

    paths = [tmp_path / "x" / "p" / "run", tmp_path / "x" / "p" / "q" / "run", tmp_path / "solo"]
    assert run_labels(paths) == ["p/run", "q/run", "solo"]
    assert run_labels([tmp_path / "only"]) == ["only"]


def test_run_without_finished_epochs_is_an_error(tmp_path):
    # what `xnet compare` leaves for a variant that diverged in its first epoch
    run = make_run(tmp_path / "lr=1e-30", [])
    png = tmp_path / "curves.png"
    line = one_line_error(xnet("plot", run, "-o", png))
    assert f"nothing to plot: {run} has no finished epochs" in line
    assert leftovers(tmp_path) == []


def test_empty_runs_among_others_are_skipped_with_a_warning(tmp_path, ok_run, captured):
    empty1 = make_run(tmp_path / "empty1", [])
    empty2 = make_run(tmp_path / "empty2", [])
    png = tmp_path / "curves.png"
    r = xnet("plot", empty1, ok_run, empty2, "-o", png)
    assert r.code == 0, r.err
    assert list(captured) == ["ok"]
    assert r.err.splitlines() == [
        f"xnet: warning: skipping {empty1}: it has no finished epochs",
        f"xnet: warning: skipping {empty2}: it has no finished epochs",
    ]
    assert png.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    ("name", "problem"),
    [("pnoext", "no suffix to tell the image format"), ("curves.jpgx", "unknown image format '.jpgx'")],
)
def test_output_without_a_known_image_suffix(tmp_path, ok_run, name, problem):
    line = one_line_error(xnet("plot", ok_run, "-o", tmp_path / name))
    assert f"--output {tmp_path / name}: {problem}" in line
    assert ".png" in line and ".pdf" in line and ".svg" in line  # the formats that work
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("suffix", "magic"), [(".svg", b"<?xml"), (".pdf", b"%PDF"), (".PNG", PNG_MAGIC)])
def test_output_format_comes_from_the_suffix(tmp_path, ok_run, suffix, magic):
    out = tmp_path / f"curves{suffix}"
    r = xnet("plot", ok_run, "-o", out)
    assert r.code == 0, r.err
    assert out.read_bytes().startswith(magic)
    assert leftovers(tmp_path) == [out.name]


def test_output_is_a_folder(tmp_path, ok_run):
    folder = tmp_path / "pin"
    folder.mkdir()
    assert one_line_error(xnet("plot", ok_run, "-o", folder)) == f"xnet: error: Is a directory: {folder}"
    assert list(folder.iterdir()) == []


def test_output_below_a_file(tmp_path, ok_run):
    afile = tmp_path / "afile"
    afile.write_text("x")
    line = one_line_error(xnet("plot", ok_run, "-o", afile / "p.png"))
    assert line == f"xnet: error: Not a directory: {afile}"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_unwritable_output_names_the_target_not_a_temp_file(ok_run):
    line = one_line_error(xnet("plot", ok_run, "-o", "/proc/p.png"))
    assert line.endswith(": /proc/p.png")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_names_the_target(tmp_path, ok_run):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        line = one_line_error(xnet("plot", ok_run, "-o", ro / "p.png"))
        assert line == f"xnet: error: Permission denied: {ro / 'p.png'}"
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_figures_are_closed_when_saving_fails(tmp_path):
    import matplotlib.pyplot as plt
    import numpy as np

    from xnet.plots.curves import plot_histories, plot_prediction
    from xnet.plots.study import plot_regression_fits, plot_study

    afile = tmp_path / "afile"
    afile.write_text("x")
    target = afile / "p.png"  # its folder is a file: every save fails
    plt.close("all")
    history = [epoch(1, 1.0, test_loss=1.0, test_accuracy=0.5)]
    x = np.linspace(0, 1, 5)
    calls = [
        lambda: plot_histories({"run": history}, target),
        lambda: plot_prediction(x, x, x, target),
        lambda: plot_study({"v": [history]}, target),
        lambda: plot_regression_fits(x, x, {"v": x}, target),
    ]
    for call in calls:
        with pytest.raises(NotADirectoryError):
            call()
        assert plt.get_fignums() == []


def test_study_figures_use_the_suffix_format(tmp_path):
    import matplotlib.pyplot as plt

    from xnet.plots.study import plot_study

    history = [epoch(1, 1.0, test_loss=1.0, test_accuracy=0.5), epoch(2, 0.5, test_loss=0.8, test_accuracy=0.6)]
    out = tmp_path / "study.svg"
    assert plot_study({"a": [history], "b": [history]}, out, title="t", failed={"c": "diverged"})
    assert out.read_bytes().startswith(b"<?xml")
    with pytest.raises(ValueError, match="no suffix to tell the image format"):
        plot_study({"a": [history]}, tmp_path / "noext")
    assert plt.get_fignums() == []
    assert leftovers(tmp_path) == ["study.svg"]
