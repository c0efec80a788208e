"""Disk: data_dir fills up during render; the job fails clearly and succeeds once space returns."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.segcache import SegmentCache
from tests.conftest import REPO, Project, add_bulletin

pytestmark = [pytest.mark.slow, pytest.mark.audio]
LOA = str(REPO / ".venv" / "bin" / "loa")


@pytest.fixture
def small_disk(small: Project) -> Iterator[Path]:
    """data_dir on its own 2 MiB tmpfs (root only)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs as data_dir")
    data = small.root / "data"
    data.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(data)], check=True)
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def test_full_disk_during_render_fails_clearly_and_recovers(small: Project, small_disk: Path) -> None:
    add_bulletin(small, "Bà con chú ý lịch tiêm phòng cho gia súc, gia cầm đợt hai năm 2026. " * 12)
    cmd = [LOA, "--config", str(small.config), "build", "--date", "2026-12-01", "--json"]
    full = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert full.returncode in (1, 3), full.stdout + full.stderr
    text = full.stdout + full.stderr
    assert "No space left on device" in text or "no space" in text.lower()
    cache = SegmentCache(small_disk / "cache" / "segments")
    for sidecar in (small_disk / "cache" / "segments").rglob("*.json"):
        entry = cache.get(sidecar.stem)
        assert entry is not None, f"{sidecar}: a cache entry whose MP3 is missing or partial"
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    report = json.loads(again.stdout)
    assert report["failed"] == 0 and report["programs"] == 4
