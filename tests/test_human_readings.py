"""A person's Vietnamese reading airs instead of TTS; recorded standard phrases replace TTS;
every segment says where its sound came from."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline import manifest
from pipeline.compose import TemplateSet, compose_emergency, compose_script
from pipeline.models import Recording
from pipeline.store import bulletins as store
from pipeline.store.recordings import current_recordings
from pipeline.voices import load_catalog
from tests import audio_fixtures as fx
from tests.conftest import REPO, CliResult, Project, add_bulletin

pytestmark = pytest.mark.audio
DAY = dt.date(2026, 12, 1)
BODY = "Thôn Tả Phìn họp lúc 7h30 ngày 02/12/2026 về gia hạn thẻ BHYT."


@pytest.mark.slow
def test_vietnamese_reading_airs_instead_of_tts_in_every_commune(
    small: Project, small_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    bid = add_bulletin(small, BODY)
    reading = fx.speech(tmp_path / "doc.wav", "Thôn Tả Phìn họp lúc bảy giờ ba mươi")
    r = small_cli("recording", "add", str(bid), "vi", str(reading))
    assert r.code == 0, r.err
    assert small_cli("bulletin", "approve", str(bid)).code == 0  # a new reading changed what airs: approved again
    rec = current_recordings(small.db())[(bid, "vi")]
    r = small_cli("nightly", "--date", DAY.isoformat())
    assert r.code == 0, r.err + r.out
    for endpoint in ("y-ty-loa", "ban-lau-loa"):  # Y Tý (vi, hmn) and Bản Lầu (vi)
        m = manifest.read(small.root / "endpoints" / endpoint / "programs" / DAY.isoformat() / "manifest.json")
        items = [i for p in m.programs for i in p.items]
        body = [i for i in items if i.bulletin_id == bid and i.language == "vi"]
        assert body and all(i.source.type == "recording" and i.source.recording == rec.id for i in body), endpoint
        assert all(i.source.human for i in body)
        speech = [i for i in items if i.kind == "speech"]
        assert speech and all(i.source.type == "tts" and not i.source.human for i in speech)
        assert not any(i.bulletin_id == bid and i.kind == "speech" for i in items)  # no TTS of the body


def test_recording_add_accepts_vi_and_still_checks_the_bulletin_languages(
    project: Project, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    bid = add_bulletin(project, BODY)
    reading = fx.speech(tmp_path / "doc.wav", "Họp thôn")
    r = cli("recording", "add", str(bid), "vi", str(reading), "--json")
    assert r.code == 0, r.err
    assert r.json()["language"] == "vi"  # type: ignore[index]
    assert cli("recording", "add", str(bid), "ium", str(reading)).code == 2  # not in the bulletin's languages


def _items_and_script(project: Project, recordings: dict[tuple[int, str], Recording], voices: Path) -> str:
    from pipeline.plan import plan_commune_day

    db = project.db()
    bulletins = store.airable_bulletins(db, DAY)
    c = project.deployment.commune("02641")
    assert c is not None
    plan = plan_commune_day(DAY, c, bulletins=bulletins, recordings=recordings, spoken=lambda t: t)[0]
    script = compose_script(
        plan, templates=TemplateSet.load(REPO / "templates"), catalog=load_catalog(voices), recordings=recordings
    )
    return script.text


def test_cue_sheet_says_recording_and_keeps_tts_without_one(project: Project, voices_with_placeholders: Path) -> None:
    bid = add_bulletin(project, BODY)
    rec = Recording(bid, "vi", Path("r.wav"), 30_000, "a" * 64, "r.wav", id=7)
    with_reading = _items_and_script(project, {(bid, "vi"): rec}, voices_with_placeholders)
    assert f"@recording {bid} vi" in with_reading and "Thôn Tả Phìn" not in with_reading
    without = _items_and_script(project, {}, voices_with_placeholders)
    assert f"@recording {bid} vi" not in without and "Thôn Tả Phìn" in without


def test_emergency_uses_the_reading_both_times(project: Project, voices_with_placeholders: Path) -> None:
    bid = add_bulletin(project, "Lũ quét ở thôn Ngải Thầu, sơ tán ngay.", priority="emergency")
    b = store.get_bulletin(project.db(), bid)
    c = project.deployment.commune("02641")
    assert c is not None
    rec = Recording(bid, "vi", Path("r.wav"), 30_000, "a" * 64, "r.wav", id=3)
    script = compose_emergency(
        b,
        c,
        templates=TemplateSet.load(REPO / "templates"),
        catalog=load_catalog(voices_with_placeholders),
        recordings={(bid, "vi"): rec},
    )
    assert [(q.kind, q.bulletin_id, q.language) for q in script.cues if q.kind == "recording"][:1] == [
        ("recording", bid, "vi")
    ]
    assert sum(1 for q in script.cues if q.kind == "recording" and q.language == "vi") == 2
    assert not any("Ngải Thầu" in q.text for q in script.cues)


CLOSING = "Hôm nay không có bản tin mới. Bà con đón nghe chương trình lần sau."


def test_recorded_standard_phrase_replaces_tts(
    project: Project, voices_with_placeholders: Path, tmp_path: Path
) -> None:
    voices = tmp_path / "voices"
    shutil.copytree(voices_with_placeholders, voices)
    (voices / "vi").mkdir()
    fx.speech(voices / "vi" / "no-news.wav", CLOSING)
    with (voices / "catalog.toml").open("a", encoding="utf-8") as f:
        f.write(
            '\n[[clip]]\nkey = "vi/no-news"\nlanguage = "vi"\nfile = "vi/no-news.wav"\n'
            'speaker = "Phát thanh viên Lò Thị Hoa"\n'
            f'transcript = "{CLOSING.upper()}"\ntranslation = "{CLOSING}"\n'
        )
    text_with = _items_and_script(project, {}, voices)
    assert "@clip vi/no-news" not in text_with  # the sheet is as written …
    c = project.deployment.commune("02641")
    assert c is not None
    from pipeline.plan import plan_commune_day

    plan = plan_commune_day(DAY, c, bulletins=[], recordings={}, spoken=lambda t: t)[0]
    script = compose_script(
        plan, templates=TemplateSet.load(REPO / "templates"), catalog=load_catalog(voices), recordings={}
    )
    clips = [q for q in script.cues if q.kind == "clip" and q.language == "vi"]  # … the cue is the recording
    assert [q.key for q in clips] == ["vi/no-news"]
    assert not any(q.kind == "speech" and q.text == CLOSING for q in script.cues)
    # a placeholder or a missing file never replaces TTS
    (voices / "vi" / "no-news.wav").unlink()
    script = compose_script(
        plan, templates=TemplateSet.load(REPO / "templates"), catalog=load_catalog(voices), recordings={}
    )
    assert any(q.kind == "speech" and q.text == CLOSING for q in script.cues)


def test_recording_add_warns_about_a_silent_reading(
    project: Project, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    bid = add_bulletin(project, BODY)
    silent = fx.silence(tmp_path / "im-lang.wav", seconds=3)
    r = cli("recording", "add", str(bid), "vi", str(silent), "--json")
    assert r.code == 0, r.err
    assert r.json()["warnings"] == ["silent"]  # type: ignore[index]
    good = fx.speech(tmp_path / "doc.wav", "Họp thôn tối nay")
    r = cli("recording", "add", str(bid), "vi", str(good))
    assert r.code == 0 and "warning" not in r.err


@pytest.mark.parametrize(("name", "codec_args"), [
    ("doc.m4a", ["-c:a", "aac"]),
    ("doc.opus", ["-c:a", "libopus"]),
    ("doc.3gp", ["-c:a", "aac", "-ar", "16000", "-f", "3gp"]),
])  # fmt: skip
def test_phone_recordings_are_accepted(
    project: Project, cli: Callable[..., CliResult], tmp_path: Path, name: str, codec_args: list[str]
) -> None:
    bid = add_bulletin(project, BODY)
    wav = fx.speech(tmp_path / "src.wav", "Họp thôn tối nay")
    phone = tmp_path / name
    fx.ffmpeg("-i", str(wav), "-ac", "1", *codec_args, str(phone))
    r = cli("recording", "add", str(bid), "vi", str(phone), "--json")
    assert r.code == 0, r.err
    assert r.json()["duration_ms"] > 500  # type: ignore[index]
