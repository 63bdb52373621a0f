"""Data folders and `xnet compare` refusals: an explicit data folder is the only one used, a bad
variant stops a study before anything trains, variant folders stay inside the study folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "cli"))
from clirun import one_line_error, xnet  # noqa: E402

from xnet.data import datasets as datasets_mod  # noqa: E402
from xnet.data import load_dataset, locate_mnist  # noqa: E402
from xnet.data import mnist as mnist_mod  # noqa: E402
from xnet.errors import ConfigError, DataError  # noqa: E402
from xnet.study import load_study, run_folder_name, run_study  # noqa: E402

NAMES = list(mnist_mod.MNIST_FILES.values())
TINY = ("--epochs", "1", "--hidden", "4", "--batch-size", "8", "-q")

SINE_BASE = """
name = "s"
[base]
dataset = "sine"
loss = "mse"
hidden = [4]
epochs = 1
batch_size = 64
schedule = "constant"
"""


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """An empty $XNET_DATA_DIR and cache, downloads off: only what a test puts there exists."""
    monkeypatch.setenv("XNET_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XNET_MNIST_MIRRORS", "")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _csv(path: Path, rows: int = 24) -> Path:
    """A labelled digits CSV of 2x2 images."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["label,pixel0,pixel1,pixel2,pixel3"] + [f"{i % 3},{i},{2 * i},{3 * i},{i % 7}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _copy(src: Path, dst: Path, names: list[str] = NAMES) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


# -- explicit data folders -------------------------------------------------------------------------


def test_missing_data_dir_is_an_error_not_a_fallback_to_the_env_folder(isolated):
    _csv(isolated / "env" / "train.csv")  # $XNET_DATA_DIR would supply it
    assert load_dataset("csv:train.csv").train.x.shape[0] == 24
    with pytest.raises(DataError, match=f"data_dir {isolated / 'nowhere'}: no such folder"):
        load_dataset("csv:train.csv", data_dir=isolated / "nowhere")
    # an existing data folder that lacks the file: looked for there, not under $XNET_DATA_DIR
    (isolated / "empty").mkdir()
    with pytest.raises(DataError, match=f"{isolated / 'empty' / 'train.csv'}: no such file"):
        load_dataset("csv:train.csv", data_dir=isolated / "empty")


def test_train_data_dir_missing_or_a_file_is_one_line(isolated):
    _csv(isolated / "env" / "train.csv")
    (isolated / "afile").write_text("x")
    line = one_line_error(xnet("train", "--dataset", "csv:train.csv", "--data-dir", "nowhere", "--out", "r", *TINY))
    assert "data_dir nowhere: no such folder" in line
    line = one_line_error(xnet("train", "--dataset", "mnist", "--data-dir", "afile", "--out", "r", *TINY))
    assert "data_dir afile: not a folder" in line
    (isolated / "run.toml").write_text('dataset = "csv:train.csv"\ndata_dir = "nowhere"\n')
    line = one_line_error(xnet("train", "--config", "run.toml", "--out", "r", *TINY))
    assert "data_dir nowhere: no such folder" in line
    assert not (isolated / "r").exists()


def test_evaluate_data_dir_missing_is_an_error(isolated):
    _csv(isolated / "env" / "train.csv")
    r = xnet("train", "--dataset", "csv:train.csv", "--out", "run", *TINY)
    assert r.code == 0, r.err
    assert xnet("evaluate", "run/model.npz", "--split", "train").code == 0
    line = one_line_error(xnet("evaluate", "run/model.npz", "--split", "train", "--data-dir", "nowhere"))
    assert "data_dir nowhere: no such folder" in line


def test_mnist_explicit_folder_is_the_only_place_looked_in(isolated, fake_mnist):
    _copy(fake_mnist, isolated / "env" / "mnist")  # $XNET_DATA_DIR holds a full set
    assert "env/mnist" in locate_mnist()[1]
    for folder in ("nowhere", "empty"):
        if folder == "empty":
            (isolated / folder).mkdir()
        with pytest.raises(DataError) as e:
            locate_mnist(folder)
        msg = str(e.value)
        assert f"MNIST not found in {folder}" in msg and f"into {folder}" in msg, msg
    assert "no such folder" in str(pytest.raises(DataError, locate_mnist, "nowhere").value)
    line = one_line_error(xnet("train", "--dataset", "mnist", "--data-dir", "nowhere", "--out", "r", *TINY))
    assert "MNIST not found in nowhere (no such folder)" in line
    with pytest.raises(DataError, match="not a folder"):
        locate_mnist(fake_mnist / NAMES[0])


def test_mnist_downloads_into_the_explicit_folder(isolated, fake_mnist, serve, monkeypatch):
    _copy(fake_mnist, isolated / "env" / "mnist")
    monkeypatch.setenv("XNET_MNIST_MIRRORS", serve(fake_mnist))
    target = isolated / "new" / "data"
    files, source = locate_mnist(target, timeout=5)
    assert source.startswith("mnist downloaded from") and str(target) in source
    assert sorted(p.name for p in target.iterdir()) == sorted(NAMES)
    assert all(p.parent == target for p in files.values())
    assert not (isolated / "cache" / "xnet" / "mnist").exists(), "downloaded into the cache instead"
    # a partial set in data_dir/mnist is completed where it is
    _copy(fake_mnist, isolated / "part" / "mnist", NAMES[:2])
    _, source = locate_mnist(isolated / "part", timeout=5)
    assert f"to {isolated / 'part' / 'mnist'}" in source
    assert sorted(p.name for p in (isolated / "part").iterdir()) == ["mnist"]


def test_failed_download_names_the_folder_and_leaves_nothing(isolated, fake_mnist):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{s.getsockname()[1]}/"
    target = isolated / "new" / "data"
    with pytest.raises(DataError) as e:
        locate_mnist(target, mirrors=[refused], timeout=5)
    msg = str(e.value)
    assert f"could not be downloaded into {target}" in msg and "connection refused" in msg
    assert f"into {target}" in msg.split("without network, ")[1]
    assert not (isolated / "new").exists(), "the folders made for the download were left behind"


def test_partial_env_set_names_the_missing_files(isolated, fake_mnist):
    _copy(fake_mnist, isolated / "env" / "mnist", NAMES[:2])
    line = one_line_error(xnet("train", "--dataset", "mnist", "--out", "r", *TINY))
    assert f"{isolated / 'env' / 'mnist'} holds only 2 of the 4 files; missing: {NAMES[2]}, {NAMES[3]}" in line
    # with an explicit folder, the same
    _copy(fake_mnist, isolated / "mine", NAMES[1:])
    with pytest.raises(DataError, match=f"mine holds only 3 of the 4 files; missing: {NAMES[0]}"):
        locate_mnist("mine")


# -- variant names and folders ---------------------------------------------------------------------


def _study(tmp_path: Path, body: str, base: str = SINE_BASE, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(base + body)
    return path


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../x", "a\\\\b", " .. "])
def test_variant_name_that_is_not_a_folder_name_is_refused(tmp_path, name):
    study = _study(tmp_path, f'[[variants]]\nname = "{name}"\nlr = 0.01\n')
    line = one_line_error(xnet("compare", study, "--out", tmp_path / "parent" / "study"))
    assert "'name'" in line and "cannot name the variant's folder" in line
    assert not (tmp_path / "parent").exists()


def test_folder_names_stay_inside_and_distinct():
    assert run_folder_name("lr=1e+30") == "lr=1e+30" != run_folder_name("lr=1e-30")
    for name in ("..", ".", "(.)", "...", "/"):
        assert run_folder_name(name) == "variant"
    assert run_folder_name("..", default="study") == "study"
    assert run_folder_name("batch 1 (SGD), lr 0.005") == "batch-1-SGD-lr-0.005"


def test_grid_values_differing_in_exponent_sign_get_their_own_folders(tmp_path):
    study = load_study(_study(tmp_path, "[grid]\nlr = [1e30, 1e-30]\n"))
    assert [run_folder_name(v.name) for v in study.variants] == ["lr=1e+30", "lr=1e-30"]


@pytest.mark.parametrize(
    ("body", "args", "expected"),
    [
        ('[[variants]]\nname = "A"\n[[variants]]\nname = "a"\n', (), "'A' and 'a' would share the folder 'A'"),
        ('[[variants]]\nname = "x"\n[[variants]]\nname = "x"\n', (), "two variants named 'x'"),
        ('[[variants]]\nname = "a"\n[[variants]]\nname = "a-seed1"\n', ("--repeat", "2"),
         "'a' and 'a-seed1' would share the folder 'a-seed1'"),
    ],
)  # fmt: skip
def test_two_runs_sharing_a_folder_are_refused_before_training(tmp_path, body, args, expected):
    out = tmp_path / "out"
    line = one_line_error(xnet("compare", _study(tmp_path, body), "--out", out, *args))
    assert expected in line
    assert not out.exists()


# -- every variant checked before any trains --------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "args", "expected"),
    [
        ('[[variants]]\nname = "a"\n[[variants]]\nname = "c"\ndataset = "csv:/nonexistent.csv"\nloss = '
         '"cross-entropy"\n', (), "variant 'c': /nonexistent.csv: no such file"),
        ('[[variants]]\nname = "a"\n[[variants]]\nname = "i"\ndataset = "idx:nowhere"\nloss = "cross-entropy"\n',
         (), "variant 'i': idx:nowhere: no such folder"),
        ('[[variants]]\nname = "a"\n[[variants]]\nname = "m"\ndataset = "mnist"\nloss = "cross-entropy"\n', (),
         "variant 'm': MNIST not found"),
        ('[grid]\nlr = [0.01, 0.1]\n', ("--device", "tpu"), "variant 'lr=0.01': device: unknown device 'tpu'"),
        ('[[variants]]\nname = "a"\n[[variants]]\nname = "g"\ndevice = "tpu"\n', (), "variant 'g': device"),
        ('[grid]\nlr = [0.01]\n', ("--data-dir", "nowhere"), "data_dir nowhere: no such folder"),
        ('[grid]\nlr = [0.01]\n', ("--data-dir", "afile"), "data_dir afile: not a folder"),
        ('early_stopping = 1\n[grid]\nlr = [0.01, 0.1]\n', (), "early_stopping"),
    ],
)  # fmt: skip
def test_bad_variant_stops_the_study_before_anything_trains(isolated, body, args, expected):
    (isolated / "afile").write_text("x")
    out = isolated / "out"
    line = one_line_error(xnet("compare", _study(isolated, body), "--out", out, *args))
    assert expected in line
    assert not out.exists(), "a variant trained (or a folder was made) before the bad one was found"


def test_out_in_a_study_is_refused(tmp_path):
    for body in ('out = "elsewhere"\n[grid]\nlr = [0.01]\n', '[[variants]]\nname = "a"\nout = "elsewhere"\n'):
        line = one_line_error(xnet("compare", _study(tmp_path, body), "--out", tmp_path / "out"))
        assert "'out' cannot be set in a study" in line and "--out" in line
    with pytest.raises(ConfigError, match=r"\[base\]: 'out'"):
        load_study(_study(tmp_path, 'out = "x"\n[grid]\nlr = [0.01]\n'))
    assert not (tmp_path / "out").exists() and not (tmp_path / "elsewhere").exists()


def test_out_that_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("keep")
    study = _study(tmp_path, "[grid]\nlr = [0.01]\n")
    assert one_line_error(xnet("compare", study, "--out", tmp_path / "afile")).endswith(
        f"Not a directory: {tmp_path / 'afile'}"
    )
    assert "Not a directory" in one_line_error(xnet("compare", study, "--out", tmp_path / "afile" / "sub"))
    assert (tmp_path / "afile").read_text() == "keep"


def test_checks_read_each_dataset_once_per_training(isolated, monkeypatch):
    _csv(isolated / "env" / "digits.csv")
    body = '[[variants]]\nname = "a"\n[[variants]]\nname = "b"\nlr = 0.01\n'
    base = SINE_BASE.replace('"sine"', '"csv:digits.csv"').replace('"mse"', '"cross-entropy"')
    calls = []
    real = datasets_mod.read_csv
    monkeypatch.setattr(datasets_mod, "read_csv", lambda p: calls.append(p) or real(p))
    rows = run_study(load_study(_study(isolated, body, base)), isolated / "out")
    assert len(rows) == 2 and len(calls) == 2, calls
    assert (isolated / "out" / "a" / "model.npz").is_file() and (isolated / "out" / "b" / "model.npz").is_file()
