"""pipeline/files.py: the atomic write every stage relies on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline import files


def test_write_atomic_replaces_the_file_by_rename_never_in_place(tmp_path: Path) -> None:
    """A reader holding the old file (an open handle, a hard link) keeps reading the old bytes whole."""
    path = tmp_path / "manifest.json"
    path.write_bytes(b"old content " * 1000)
    held = tmp_path / "held-by-a-reader"
    os.link(path, held)  # the same inode, as an open reader or a sync tool sees it
    with held.open("rb") as reader:
        assert files.write_atomic(path, b"new", mode=0o640) is True
        assert reader.read() == b"old content " * 1000
    assert path.read_bytes() == b"new"
    assert held.read_bytes() == b"old content " * 1000  # an in-place write would have changed it
    assert path.stat().st_ino != held.stat().st_ino
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert files.write_atomic(path, b"new") is False  # the same bytes: nothing written


def test_write_atomic_leaves_the_old_file_whole_when_the_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "playlist.m3u"
    path.write_bytes(b"#EXTM3U\nold.mp3\n")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        files.write_atomic(path, b"#EXTM3U\nnew.mp3\n" * 1000)
    assert path.read_bytes() == b"#EXTM3U\nold.mp3\n"
    assert [p.name for p in tmp_path.iterdir()] == ["playlist.m3u"]
