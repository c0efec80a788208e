"""The nightly job end to end on a small deployment: real espeak-ng, ffmpeg, mpv, SQLite."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.store.runs import latest_deliveries, recent_runs
from tests import audio_fixtures as fx
from tests.conftest import CliResult, Project, add_bulletin

pytestmark = [pytest.mark.audio, pytest.mark.slow]
DAY = "2026-12-01"


@pytest.fixture
def run(small_cli: Callable[..., CliResult]) -> Callable[..., CliResult]:
    return small_cli


def files_under(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_nightly_builds_pushes_and_a_second_run_does_nothing(
    small: Project, run: Callable[..., CliResult], tmp_path: Path
) -> None:
    bid = add_bulletin(small, "Thôn Tả Phìn họp lúc 7h30 ngày 02/12/2026 về gia hạn thẻ BHYT.")
    rec = fx.speech(tmp_path / "hmn.wav", "Bản ghi tiếng Mông")
    assert run("recording", "add", str(bid), "hmn", str(rec)).code == 0
    assert run("bulletin", "approve", str(bid)).code == 0  # a new recording needs approval again

    first = run("nightly", "--date", DAY, "--json")
    assert first.code == 0, first.err
    report = json.loads(first.out)
    assert report["build"]["programs"] == 4  # two communes × two slots (Tuesday)
    assert report["build"]["segments_rendered"] > 0
    assert all(e["status"] == "delivered" for e in report["endpoints"])
    assert Path(report["report"]).is_file()

    root = small.root / "endpoints"
    playlist = root / "y-ty-loa" / "programs" / DAY / "morning.m3u"
    assert "Bản ghi tiếng Mông" not in playlist.read_text()  # titles, not transcripts
    assert "Bản tin " in playlist.read_text()
    played = subprocess.run(
        ["mpv", "--ao=null", "--ao-null-untimed", "--no-video", "--really-quiet", str(playlist)],
        capture_output=True,
        timeout=120,
    )
    assert played.returncode == 0
    assert sorted(p.name for p in (root / "y-ty-radio" / "programs" / DAY).iterdir()) == [
        "evening.mp3",
        "manifest.json",
        "manifest.json.sig",
        "morning.mp3",
    ]
    before = files_under(root)

    second = json.loads(run("nightly", "--date", DAY, "--json").out)
    assert second["build"]["segments_rendered"] == 0
    assert sum(e["bytes_sent"] for e in second["endpoints"]) == 0
    # every endpoint took exactly this a moment ago: none is reconnected
    assert {e["attempts"] for e in second["endpoints"]} == {0}
    assert files_under(root) == before

    lost = next((root / "y-ty-loa" / "media").iterdir())
    lost.unlink()  # removed on the device behind Loa's back
    trusted = json.loads(run("push", "--date", DAY, "--json").out)
    assert {e["attempts"] for e in trusted["endpoints"]} == {0} and not lost.exists()
    checked = json.loads(run("push", "--date", DAY, "--recheck", "--json").out)
    sent = {e["endpoint"]: e["files_sent"] for e in checked["endpoints"]}
    assert sent.pop("y-ty-loa") == 1 and set(sent.values()) == {0}
    assert lost.is_file() and files_under(root).keys() == before.keys()

    status = run("status", "--date", DAY, "--json")
    assert {e["status"] for e in json.loads(status.out)["endpoints"]} == {"delivered"}
    runs = recent_runs(small.db())
    assert [r.status for r in runs[:2]] == ["done", "done"]


def test_one_bad_recording_fails_only_its_programs(
    small: Project, run: Callable[..., CliResult], tmp_path: Path
) -> None:
    bid = add_bulletin(small, "Họp thôn.", targets='["02641"]')
    add_bulletin(small, "Tiêm phòng cho gia súc.", targets='["02695"]', title="Tiêm phòng gia súc")
    good = fx.speech(tmp_path / "hmn.wav", "Tiếng Mông")
    assert run("recording", "add", str(bid), "hmn", str(good)).code == 0
    assert run("bulletin", "approve", str(bid)).code == 0  # a new recording needs approval again
    # the stored copy is damaged after intake (a disk fault, a bad copy)
    from pipeline.store.recordings import current_recordings

    stored = current_recordings(small.db())[(bid, "hmn")].path
    stored.write_bytes(stored.read_bytes()[:100])

    result = run("nightly", "--date", DAY)
    assert result.code == 3
    assert result.err.strip() == (
        "error: nightly 2026-12-01: 4 failed: 02641/2026-12-01/morning, 02641/2026-12-01/evening, y-ty-loa, y-ty-radio"
    )
    assert f"bulletin {bid}, hmn, {stored}" in result.out
    assert (small.root / "endpoints" / "ban-lau-loa" / "programs" / DAY / "manifest.json").is_file()
    deliveries = {d.endpoint: d for d in latest_deliveries(small.db(), DAY)}
    assert deliveries["ban-lau-loa"].status == "delivered"
    assert deliveries["y-ty-loa"].status == "failed" and "loa build" in (deliveries["y-ty-loa"].error or "")


def test_build_reports_missing_recordings_and_deferrals(small: Project, run: Callable[..., CliResult]) -> None:
    add_bulletin(small, "Bà con chú ý.")
    result = run("build", "--date", DAY, "--json")
    assert result.code == 0
    report = json.loads(result.out)
    assert any("no hmn recording" in m for m in report["missing_recordings"])
    # one line per missing recording, however many programs it concerns
    assert len(report["missing_recordings"]) == len(set(report["missing_recordings"]))
    assert all(" program" in m for m in report["missing_recordings"])
    assert report["failed"] == 0
