"""Render, master and package with real espeak-ng, ffmpeg, ffprobe and mpv."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from pipeline import manifest as mf
from pipeline.audio import ffmpeg
from pipeline.config import Settings
from pipeline.models import Cue, Program, Recording, Script, Segment
from pipeline.package import day_valid_until, package_commune
from pipeline.render import script_units
from pipeline.runner import InProcessRunner, WorkContext
from pipeline.tts.chain import build_engine_chain
from pipeline.units import PackageUnit, RenderUnit, UnitResult
from tests import audio_fixtures as fx
from tests.conftest import Project

pytestmark = pytest.mark.audio


def ffprobe_ms(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return round(float(json.loads(out)["format"]["duration"]) * 1000)


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    return {
        "chime/open": fx.sine(tmp_path / "chime.wav", seconds=1.0, channels=1, rate=44100),
        "hmn/intro": fx.speech(tmp_path / "intro.wav", "Tiếng Mông"),
        "recording": fx.sine(tmp_path / "rec-stereo48k.wav", seconds=2.0, channels=2, rate=48000, volume_db=-12),
    }


def script_for(name: str, text: str) -> Script:
    cues = (
        Cue("chime", 1, key="open"),
        Cue("speech", 2, text=text),
        Cue("pause", 4, ms=500),
        Cue("clip", 5, key="hmn/intro", language="hmn"),
        Cue("recording", 6, language="hmn", bulletin_id=7),
        Cue("comment", 7, text="thiếu bản ghi tiếng Dao"),
    )
    return Script(name=name, text="", cues=cues)


Rendered = tuple[list[tuple[list[RenderUnit], list[Exception]]], dict[str, UnitResult]]


def render(settings: Settings, scripts: list[Script], inputs: dict[str, Path]) -> Rendered:
    """The scripts' distinct units, run by the in-process runner: (units and errors per script, results by key)."""
    rec = Recording(7, "hmn", inputs["recording"], 2000, "f" * 64, "rec.wav", id=70)
    kwargs = dict(
        engines=build_engine_chain(settings.tts),
        settings=settings,
        normalize=str.strip,
        clips=inputs,
        recordings={(7, "hmn"): rec},
    )
    per_script = [script_units(s, **kwargs) for s in scripts]  # type: ignore[arg-type]
    for _, errors in per_script:
        assert errors == []
    unique = {u.key: u for units, _ in per_script for u in units}
    results = InProcessRunner(WorkContext(settings)).run(list(unique.values()))
    return per_script, {r.key: r for r in results}  # type: ignore[return-value]


def segments_for(units: list[RenderUnit], results: dict[str, UnitResult]) -> tuple[list[Segment], list[str]]:
    segs = [results[u.key].segment for u in units if results[u.key].ok]
    return [s for s in segs if s is not None], [str(results[u.key].error) for u in units if not results[u.key].ok]


def test_render_once_reuse_and_package_plays(project: Project, inputs: dict[str, Path]) -> None:
    settings = project.settings
    scripts = [
        script_for("02641/2026-12-01/morning", "Kính thưa bà con."),
        script_for("02803/2026-12-01/morning", "Kính thưa bà con."),
    ]
    per_script, result = render(settings, scripts, inputs)
    assert all(r.ok for r in result.values())
    assert len(result) == 5 and not any(r.segment and r.segment.reused for r in result.values())  # five distinct
    again = render(settings, scripts, inputs)[1]
    assert all(r.segment and r.segment.reused for r in again.values())  # warm: no synthesis, no encoding

    segs, errs = segments_for(per_script[0][0], result)
    assert errs == [] and [s.kind for s in segs] == ["chime", "speech", "pause", "clip", "recording"]
    for seg in segs:
        info = ffmpeg.probe_audio(seg.path, settings=settings.audio)
        assert (info.codec, info.channels, info.sample_rate) == ("mp3", 1, 44100)
        assert abs(ffprobe_ms(seg.path) - seg.duration_ms) <= 50
        if seg.kind != "pause":
            assert seg.loudness_lufs == pytest.approx(-16.0, abs=1.0)
    assert segs[2].duration_ms == pytest.approx(500, abs=60)

    commune = project.deployment.commune("02641")
    assert commune is not None  # Y Tý has a single-file endpoint too
    start = dt.datetime(2026, 12, 1, 5, 30, tzinfo=settings.tz)
    program = Program(
        "02641/2026-12-01/morning",
        "02641",
        dt.date(2026, 12, 1),
        "morning",
        start,
        "routine",
        dt.date(2026, 12, 1),
        tuple(segs),
    )
    unit = PackageUnit(
        commune, "programs/2026-12-01", (program,), settings.timezone, day_valid_until(program.date, settings.tz)
    )
    ctx = WorkContext(settings)
    packaged = package_commune(unit, settings=settings, key=ctx.key)
    manifests = {m.endpoint: m for m in map(mf.read, packaged.manifests)}
    assert set(manifests) == {e.name for e in commune.endpoints}
    manifest = manifests["y-ty-loa"]  # the playlist endpoint
    root = settings.outbox_dir / "02641"
    for entry in manifest.files:
        mf.check_file(root, entry)
    items = manifest.programs[0].items
    item_ms = [i.duration_ms for i in items]
    for item in items:
        assert item.file is not None
        assert abs(ffprobe_ms(root / item.file) - item.duration_ms) <= 50
    sources = [i.source for i in items]
    assert [s.type for s in sources] == ["chime", "tts", "silence", "clip", "recording"]
    assert sources[1].engine == "espeak" and not sources[1].human
    assert sources[4].recording == 70 and sources[4].human
    single = root / "programs/2026-12-01/morning.mp3"
    assert abs(ffprobe_ms(single) - sum(item_ms)) <= 50 * len(item_ms)
    playlist = root / "programs/2026-12-01/morning.m3u"
    text = playlist.read_text()
    assert text.startswith("#EXTM3U\n") and "#EXTINF:" in text and "../../media/" in text
    played = subprocess.run(
        ["mpv", "--ao=null", "--ao-null-untimed", "--no-video", "--really-quiet", str(playlist)],
        capture_output=True,
        timeout=60,
    )
    assert played.returncode == 0, played.stderr
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    package_commune(unit, settings=settings, key=ctx.key)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before  # nothing rewritten


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "empty.mp3", "empty"),
        (lambda d: fx.garbled(d / "bad.mp3", fx.sine(d / "ok.mp3", seconds=2.0)), "bulletin 7, hmn"),
    ],
)
def test_bad_recording_names_bulletin_language_and_file(
    project: Project, inputs: dict[str, Path], tmp_path: Path, make, message: str
) -> None:  # type: ignore[no-untyped-def]
    bad = make(tmp_path)
    if not bad.exists():
        bad.write_bytes(b"")
    inputs = inputs | {"recording": bad}
    per_script, result = render(project.settings, [script_for("02641/2026-12-01/morning", "Xin chào.")], inputs)
    segs, errs = segments_for(per_script[0][0], result)
    assert len(errs) == 1 and len(segs) == 4
    assert "bulletin 7, hmn" in errs[0] and str(bad) in errs[0]
    assert message in errs[0]


def test_text_that_normalizes_to_nothing_names_the_bulletin(project: Project, inputs: dict[str, Path]) -> None:
    from pipeline.produce import spoken_form

    settings = project.settings
    script = Script("02641/2026-12-01/morning", "", (Cue("speech", 9, text="… !!! 🙂 <br>", bulletin_id=12),))
    jobs, errors = script_units(
        script,
        engines=build_engine_chain(settings.tts),
        settings=settings,
        normalize=spoken_form(settings),
        clips=inputs,
        recordings={},
    )
    assert jobs == [] and len(errors) == 1
    assert "line 9" in str(errors[0]) and "bulletin 12 (vi)" in str(errors[0]) and "nothing to speak" in str(errors[0])
