"""xnet.atomic: complete files or none, umask-based permissions, errors that name the target."""

import os
import stat

import pytest

from xnet.atomic import atomic_write_bytes, atomic_write_text, ensure_folder


def test_write_replaces_and_uses_umask_mode(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    old = os.umask(0o022)
    try:
        atomic_write_text(target, "one")
        atomic_write_text(target, "two")
    finally:
        os.umask(old)
    assert target.read_text() == "two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]  # no temporary left


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"old")


    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_errors_name_the_target_not_the_temporary(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError) as e:
        atomic_write_text(tmp_path / "folder", "x")
    assert e.value.filename == str(tmp_path / "folder")
    (tmp_path / "afile").write_text("")
    with pytest.raises(NotADirectoryError) as e:
        atomic_write_text(tmp_path / "afile" / "deeper" / "x.txt", "x")
    assert e.value.filename == str(tmp_path / "afile")
    with pytest.raises(NotADirectoryError):
        ensure_folder(tmp_path / "afile")


def test_the_file_and_then_its_folder_are_synced(tmp_path, monkeypatch):
    from xnet import atomic

    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", spy)
    atomic.atomic_write_text(tmp_path / "a.txt", "x")
    assert synced == [False, True]  # the data, then the rename in its folder
