"""pipeline.audio against real ffmpeg, on fixtures generated at test time."""

from __future__ import annotations

import json
import math
import subprocess
import time
import wave
from collections.abc import Callable
from pathlib import Path

import pytest
from mutagen.id3 import ID3

from pipeline.audio import ffmpeg, ffmpeg_write, ingest, mastering
from pipeline.audio import files as audio_files
from pipeline.audio.loudness import (
    Loudness,
    choose_gain,
    gain_slope,
    limiter_loss,
    parse_ebur128,
    parse_ebur128_named,
    predict_gain,
    slope_at,
)
from pipeline.audio.types import Id3Tags
from pipeline.config import AudioSettings
from pipeline.errors import RenderError
from tests import audio_fixtures as fx

pytestmark = pytest.mark.audio

S = AudioSettings()
TAGS = Id3Tags(
    title="Tăng cường truyền thông chính sách",
    album="Y Tý 2026-12-01 morning",
    language="vi",
    comment="bulletin 42",
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("audio")
    speech = fx.speech(d / "speech.wav", "Kính thưa bà con nhân dân xã Tả Van.")
    sine_mp3 = fx.sine(d / "sine48.mp3", seconds=3.0)
    (d / "empty.mp3").write_bytes(b"")
    (d / "text.mp3").write_text("Đây không phải là âm thanh.\n", encoding="utf-8")
    fx.ffmpeg("-f", "lavfi", "-i", "color=c=red:s=32x32:d=1", "-frames:v", "1", str(d / "image.png"))
    return {
        "speech": speech,
        "sine48": fx.sine(d / "sine48.wav"),
        "mono48": fx.sine(d / "mono48.wav", seconds=1.0, channels=1),
        "sine48_mp3": sine_mp3,
        "padded": fx.padded(d / "padded.wav"),
        "quiet": fx.quiet_speech(d / "quiet.wav", speech),
        "loud_sine": fx.sine(d / "loud.wav", seconds=1.5, rate=44100, channels=1, volume_db=17),
        "silent": fx.silence(d / "silent.wav", seconds=2.0),
        "garbled": fx.garbled(d / "garbled.mp3", sine_mp3),
        "truncated": fx.truncated(d / "truncated.mp3", sine_mp3),
        "empty": d / "empty.mp3",
        "text": d / "text.mp3",
        "image": d / "image.png",
    }


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


# --- probe: the fixture table -------------------------------------------------------

TABLE: list[tuple[str, Callable[[dict[str, Path]], float] | float, int, int, str]] = [
    # name, expected seconds (or how to know them), channels, sample rate, codec
    ("sine48", 2.0, 2, 48000, "pcm_s16le"),
    ("mono48", 1.0, 1, 48000, "pcm_s16le"),
    ("sine48_mp3", 3.0, 2, 48000, "mp3"),
    ("padded", 4.0, 1, 44100, "pcm_s16le"),
    ("speech", lambda f: _wav_seconds(f["speech"]), 1, 22050, "pcm_s16le"),
    ("quiet", lambda f: _wav_seconds(f["speech"]), 2, 48000, "pcm_s16le"),
]


@pytest.mark.parametrize(("name", "seconds", "channels", "rate", "codec"), TABLE)
def test_probe_fixture_table(
    files: dict[str, Path],
    name: str,
    seconds: float | Callable[[dict[str, Path]], float],
    channels: int,
    rate: int,
    codec: str,
) -> None:
    info = ffmpeg.probe_audio(files[name], settings=S)
    expected = seconds(files) if callable(seconds) else seconds
    assert info.duration_ms / 1000 == pytest.approx(expected, abs=0.06)
    assert (info.channels, info.sample_rate, info.codec) == (channels, rate, codec)
    assert info.bit_rate > 0


@pytest.mark.parametrize(
    ("name", "words"),
    [("empty", "empty (0 bytes)"), ("text", "not a readable audio file"), ("image", "no audio stream")],
)
def test_probe_refuses_what_is_not_audio(files: dict[str, Path], name: str, words: str) -> None:
    with pytest.raises(RenderError) as err:
        ffmpeg.probe_audio(files[name], settings=S)
    assert str(files[name]) in str(err.value)
    assert words in str(err.value)


def test_probe_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="no such audio file"):
        ffmpeg.probe_audio(tmp_path / "nope.wav", settings=S)


def test_missing_ffprobe_says_what_to_do(files: dict[str, Path]) -> None:
    broken = AudioSettings(ffprobe="/nonexistent/ffprobe")
    with pytest.raises(RenderError, match="make setup"):
        ffmpeg.probe_audio(files["sine48"], settings=broken)


# --- ingest ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "seconds"), [("sine48_mp3", 3.0), ("mono48", 1.0), ("sine48", 2.0)])
def test_ingest_48k_mono_or_stereo_becomes_mono_44k(
    files: dict[str, Path], tmp_path: Path, name: str, seconds: float
) -> None:
    info = ingest.ingest_audio(files[name], tmp_path / "out.wav", settings=S)
    probed = ffmpeg.probe_audio(tmp_path / "out.wav", settings=S)
    assert (probed.channels, probed.sample_rate, probed.codec) == (1, 44100, "pcm_s16le")
    assert info.duration_ms == pytest.approx(probed.duration_ms, abs=2)
    assert info.duration_ms / 1000 == pytest.approx(seconds, abs=0.1)


def test_ingest_trims_silence_at_both_ends_keeping_a_pad(files: dict[str, Path], tmp_path: Path) -> None:
    info = ingest.ingest_audio(files["padded"], tmp_path / "out.wav", settings=S)
    expected = 1.0 + 2 * ingest.TRIM_PAD_MS / 1000
    assert info.duration_ms / 1000 == pytest.approx(expected, abs=0.06)
    assert _wav_seconds(tmp_path / "out.wav") == pytest.approx(expected, abs=0.06)
    untrimmed = ingest.ingest_audio(files["padded"], tmp_path / "full.wav", settings=S, trim_silence=False)
    assert untrimmed.duration_ms / 1000 == pytest.approx(4.0, abs=0.03)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("garbled", "damaged"),
        ("truncated", "cut short"),
        ("silent", "only silence"),
        ("text", "not a readable"),
    ],
)
def test_ingest_refuses_bad_recordings(files: dict[str, Path], tmp_path: Path, name: str, words: str) -> None:
    dst = tmp_path / "out.wav"
    with pytest.raises(RenderError) as err:
        ingest.ingest_audio(files[name], dst, settings=S)
    assert words in str(err.value) and str(files[name]) in str(err.value)
    assert list(tmp_path.iterdir()) == []  # no half file, no temporary left behind


def test_vbr_mp3_without_header_is_not_taken_for_truncated(files: dict[str, Path], tmp_path: Path) -> None:
    vbr = tmp_path / "vbr.mp3"
    fx.ffmpeg("-i", str(files["speech"]), "-c:a", "libmp3lame", "-q:a", "5", "-write_xing", "0", str(vbr))
    info = ingest.ingest_audio(vbr, tmp_path / "out.wav", settings=S)
    assert info.duration_ms / 1000 == pytest.approx(_wav_seconds(files["speech"]), abs=0.5)


def test_three_hour_file_is_refused_from_its_header(tmp_path: Path) -> None:
    long = fx.long_silence(tmp_path / "long.wav", hours=3)
    started = time.monotonic()
    info = ffmpeg.probe_audio(long, settings=S)
    assert info.duration_ms == 3 * 3600 * 1000
    with pytest.raises(RenderError, match=r"180\.0 minutes long; recordings may be at most 30 minutes"):
        ingest.ingest_audio(long, tmp_path / "out.wav", settings=S)
    assert time.monotonic() - started < 2.0
    assert not (tmp_path / "out.wav").exists()


# --- loudness and mastering ---------------------------------------------------------


class RunCounter:
    """Counts the processes started (real ffmpeg still runs; nothing is faked)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tools: list[str] = []
        real = subprocess.run

        def run(args: list[str], *a: object, **kw: object) -> object:
            self.tools.append(Path(args[0]).name)
            return real(args, *a, **kw)  # type: ignore[call-overload]

        monkeypatch.setattr(subprocess, "run", run)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["speech", "quiet", "loud_sine", "sine48"])
def test_master_reaches_target_loudness_and_format(
    files: dict[str, Path], tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = ffmpeg.compute_loudness(files[name], settings=S)
    wav = tmp_path / "in.wav"
    counter = RunCounter(monkeypatch)
    ingested = ingest.ingest_audio(files[name], wav, settings=S)
    assert ingested.loudness is not None
    result = mastering.master_mp3(wav, tmp_path / "out.mp3", settings=S, tags=TAGS, source_loudness=ingested.loudness)
    monkeypatch.undo()
    # decoding, measuring and encoding run in this process (FFmpeg's libraries): no process
    assert counter.tools == []
    assert result.encodes <= 2, "the predicted gain should rarely need a correction"
    info = ffmpeg.probe_audio(result.path, settings=S)
    assert (info.codec, info.channels, info.sample_rate, info.bit_rate) == ("mp3", 1, 44100, 64000)
    sizes = _packet_sizes(result.path)
    assert set(sizes) <= {208, 209}, "CBR 64 kbps at 44.1 kHz has 208/209-byte frames"
    measured = ffmpeg.compute_loudness(result.path, settings=S)
    # result.loudness is the signal fed to the encoder; the MP3 is within ±1 LU of the target
    assert measured.integrated_lufs == pytest.approx(result.loudness.integrated_lufs, abs=0.6)
    assert measured.integrated_lufs == pytest.approx(S.target_lufs, abs=1.0), (name, before, measured)
    assert measured.true_peak_db <= S.true_peak_db, (name, measured)
    assert result.loudness.true_peak_db <= S.true_peak_db - 0.5
    assert result.duration_ms == pytest.approx(info.duration_ms, abs=1)  # as ffprobe says
    assert result.bytes == result.path.stat().st_size


@pytest.mark.slow
def test_master_measures_the_source_itself_when_not_given(files: dict[str, Path], tmp_path: Path) -> None:
    given = ingest.ingest_audio(files["speech"], tmp_path / "in.wav", settings=S)
    assert given.loudness is not None
    alone = ffmpeg.compute_loudness(tmp_path / "in.wav", settings=S)
    # measured before trimming; the trimmed silence is under ebur128's gates
    assert given.loudness.integrated_lufs == pytest.approx(alone.integrated_lufs, abs=0.3)
    assert given.loudness.sample_peak_db is not None and math.isnan(given.loudness.true_peak_db)
    # measured on the 16-bit samples written: the sample peak is at most the true peak
    assert alone.true_peak_db - 1.0 <= given.loudness.sample_peak_db <= alone.true_peak_db + 0.05
    assert given.loudness.peak_db == given.loudness.sample_peak_db
    a = mastering.master_mp3(tmp_path / "in.wav", tmp_path / "a.mp3", settings=S, tags=TAGS)
    own = mastering.pcm_loudness(tmp_path / "in.wav", settings=S)  # what master measures in-process
    assert own.integrated_lufs == pytest.approx(alone.integrated_lufs, abs=0.3)
    assert own.true_peak_db == pytest.approx(alone.true_peak_db, abs=0.2)
    b = mastering.master_mp3(tmp_path / "in.wav", tmp_path / "b.mp3", settings=S, tags=TAGS, source_loudness=own)
    assert a.path.read_bytes() == b.path.read_bytes()


def _packet_sizes(path: Path) -> list[int]:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "packet=size",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return [int(p["size"]) for p in json.loads(out)["packets"]]


@pytest.mark.slow
def test_master_writes_id3v24_tags_and_is_deterministic(files: dict[str, Path], tmp_path: Path) -> None:
    a = mastering.master_mp3(files["speech"], tmp_path / "a" / "x.mp3", settings=S, tags=TAGS)
    b = mastering.master_mp3(files["speech"], tmp_path / "b" / "x.mp3", settings=S, tags=TAGS)
    assert a.sha256 == b.sha256
    assert a.path.read_bytes() == b.path.read_bytes()
    tags = ID3(str(a.path))
    assert tags.version == (2, 4, 0)
    assert tags["TIT2"].text == [TAGS.title]
    assert tags["TALB"].text == [TAGS.album]
    assert tags["TLAN"].text == ["vie"]
    assert tags["TPE1"].text == ["Loa"]
    assert tags.getall("COMM")[0].text == ["bulletin 42"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["x.mp3"]


def test_master_silence_stays_silent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pause = audio_files.make_silence(tmp_path / "p.wav", 500, settings=S)
    assert pause.loudness is not None and pause.loudness.silent
    counter = RunCounter(monkeypatch)
    result = mastering.master_mp3(
        tmp_path / "p.wav",
        tmp_path / "p.mp3",
        settings=S,
        tags=Id3Tags(title="pause"),
        source_loudness=pause.loudness,
    )
    monkeypatch.undo()
    assert counter.tools == [] and result.encodes == 1
    assert result.loudness.silent and result.gain_db == 0.0
    assert ffmpeg.compute_loudness(result.path, settings=S).silent
    assert result.duration_ms == pytest.approx(500, abs=60)
    assert result.duration_ms == pytest.approx(ffmpeg.probe_audio(result.path, settings=S).duration_ms, abs=1)


def test_master_missing_source_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"missing\.wav"):
        mastering.master_mp3(tmp_path / "missing.wav", tmp_path / "out" / "x.mp3", settings=S, tags=TAGS)
    assert not any((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


# --- silence, tones, joining ---------------------------------------------------------


def test_make_silence_and_tone(tmp_path: Path) -> None:
    pause = audio_files.make_silence(tmp_path / "pause.wav", 750, settings=S)
    assert pause.duration_ms == 750 and pause.channels == 1 and pause.sample_rate == 44100
    assert ffmpeg.compute_loudness(tmp_path / "pause.wav", settings=S).silent
    chime = ffmpeg_write.make_tone(tmp_path / "chime.wav", settings=S, freqs=(660, 880), ms=800)
    assert chime.duration_ms == pytest.approx(800, abs=5)
    assert ffmpeg.probe_audio(tmp_path / "chime.wav", settings=S).channels == 1
    loud = ffmpeg.compute_loudness(tmp_path / "chime.wav", settings=S)
    assert -30 < loud.integrated_lufs < -10
    with pytest.raises(RenderError, match="longer than 0 ms"):
        audio_files.make_silence(tmp_path / "bad.wav", 0, settings=S)
    with pytest.raises(RenderError, match="20–20000 Hz"):
        ffmpeg_write.make_tone(tmp_path / "bad.wav", settings=S, freqs=(), ms=100)


@pytest.mark.slow
def test_concat_duration_is_the_sum_of_parts(files: dict[str, Path], tmp_path: Path) -> None:
    ffmpeg_write.make_tone(tmp_path / "chime.wav", settings=S, freqs=(660, 880), ms=600)
    audio_files.make_silence(tmp_path / "pause.wav", 400, settings=S)
    parts = []
    for i, src in enumerate([tmp_path / "chime.wav", files["speech"], tmp_path / "pause.wav"]):
        parts.append(mastering.master_mp3(src, tmp_path / f"part{i}.mp3", settings=S, tags=Id3Tags(title=f"p{i}")))
    joined = ffmpeg_write.concat_mp3([p.path for p in parts], tmp_path / "prog" / "morning.mp3", settings=S, tags=TAGS)
    total = sum(p.duration_ms for p in parts)
    assert joined.duration_ms == pytest.approx(total, abs=50 * len(parts))
    assert (joined.codec, joined.channels, joined.sample_rate, joined.bit_rate) == ("mp3", 1, 44100, 64000)
    assert ID3(str(tmp_path / "prog" / "morning.mp3"))["TIT2"].text == [TAGS.title]
    again = ffmpeg_write.concat_mp3([p.path for p in parts], tmp_path / "again.mp3", settings=S, tags=TAGS)
    assert again == joined
    assert (tmp_path / "again.mp3").read_bytes() == (tmp_path / "prog" / "morning.mp3").read_bytes()


def test_concat_refuses_parts_of_other_formats(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="cannot be joined"):
        ffmpeg_write.concat_mp3([files["sine48_mp3"], files["sine48"]], tmp_path / "x.mp3", settings=S)
    with pytest.raises(RenderError, match="nothing to join"):
        ffmpeg_write.concat_mp3([], tmp_path / "x.mp3", settings=S)


# --- parsing captured output ---------------------------------------------------------

EBUR128_SUMMARY = """\
[Parsed_ebur128_0 @ 0x55bc9396d980] Summary:

  Integrated loudness:
    I:         -18.7 LUFS
    Threshold: -28.9 LUFS

  Loudness range:
    LRA:         2.0 LU
    Threshold: -39.2 LUFS
    LRA low:   -20.3 LUFS
    LRA high:  -18.3 LUFS

  True peak:
    Peak:        0.0 dBFS
"""

SILENCEDETECT = """\
[silencedetect @ 0x55cdafa6e0c0] [info] silence_start: 0
[silencedetect @ 0x55cdafa6e0c0] [info] silence_end: 1.49433 | silence_duration: 1.49433
[mp3float @ 0x55cea8b88940] [error] Header missing
[error] Error while decoding stream #0:0: Invalid data found when processing input
[silencedetect @ 0x55cdafa6e0c0] [info] silence_start: 2.5
[silencedetect @ 0x55cdafa6e0c0] [info] silence_end: 4 | silence_duration: 1.5
"""


def test_parse_captured_ebur128() -> None:
    loud = parse_ebur128(EBUR128_SUMMARY)
    assert loud is not None
    assert (loud.integrated_lufs, loud.true_peak_db, loud.lra) == (-18.7, 0.0, 2.0)
    silent = parse_ebur128(EBUR128_SUMMARY.replace("-18.7 LUFS", "-70.0 LUFS").replace("0.0 dBFS", "-inf dBFS"))
    assert silent is not None and silent.silent and silent.true_peak_db == float("-inf")
    assert parse_ebur128("no summary here") is None


def test_parse_summary_with_level_prefix() -> None:
    prefixed = EBUR128_SUMMARY.replace("] Summary:", "] [info] Summary:")
    assert parse_ebur128(prefixed) == parse_ebur128(EBUR128_SUMMARY)


def test_parse_sample_and_true_peaks_apart() -> None:
    both = EBUR128_SUMMARY.replace("  True peak:", "  Sample peak:\n    Peak:       -0.3 dBFS\n\n  True peak:")
    loud = parse_ebur128(both)
    assert loud is not None and (loud.true_peak_db, loud.sample_peak_db, loud.peak_db) == (0.0, -0.3, 0.0)
    sample_only = parse_ebur128(EBUR128_SUMMARY.replace("True peak:", "Sample peak:"))
    assert sample_only is not None and math.isnan(sample_only.true_peak_db)
    assert sample_only.sample_peak_db == 0.0 == sample_only.peak_db


def test_parse_captured_silences_and_errors() -> None:
    assert ffmpeg.parse_silences(SILENCEDETECT) == [(0, 1494), (2500, 4000)]
    assert ffmpeg.error_lines(SILENCEDETECT) == [
        "Header missing",
        "Error while decoding stream #0:0: Invalid data found when processing input",
    ]


NAMED_SUMMARIES = """\
[ebur128@g1 @ 0x557d7866ad80] Summary:

  Integrated loudness:
    I:         -70.0 LUFS
    Threshold:   0.0 LUFS

  Loudness range:
    LRA:         0.0 LU
    Threshold:   0.0 LUFS
    LRA low:     0.0 LUFS
    LRA high:    0.0 LUFS
[ebur128@g0 @ 0x557d78669840] Summary:

  Integrated loudness:
    I:         -70.0 LUFS
    Threshold:   0.0 LUFS

  Loudness range:
    LRA:         0.0 LU
    Threshold:   0.0 LUFS
    LRA low:     0.0 LUFS
    LRA high:    0.0 LUFS
[ebur128@g1 @ 0x557d78658980] Summary:

  Integrated loudness:
    I:         -16.7 LUFS
    Threshold: -26.9 LUFS

  Loudness range:
    LRA:         1.1 LU
    Threshold: -37.1 LUFS
    LRA low:   -18.0 LUFS
    LRA high:  -16.3 LUFS
[ebur128@g0 @ 0x557d78657540] Summary:

  Integrated loudness:
    I:         -19.3 LUFS
    Threshold: -29.5 LUFS

  Loudness range:
    LRA:         1.9 LU
    Threshold: -39.6 LUFS
    LRA low:   -21.0 LUFS
    LRA high:  -18.9 LUFS
"""


def test_parse_named_summaries_keeps_the_last_of_each() -> None:
    found = parse_ebur128_named(NAMED_SUMMARIES)
    assert {k: v.integrated_lufs for k, v in found.items()} == {"g0": -19.3, "g1": -16.7}
    assert found["g0"].lra == 1.9


def test_choose_gain_interpolates_along_the_limited_curve() -> None:
    points = [(2.7, -17.5), (4.7, -16.4), (6.7, -15.7), (8.7, -15.0)]
    assert choose_gain(points, -16.0) == pytest.approx(4.7 + 2 * 0.4 / 0.7)
    assert choose_gain(points, -20.0) == pytest.approx(0.2)  # quieter than all: plain gain down
    assert choose_gain(points, -14.0) == pytest.approx(9.7)  # louder than all: plain gain up
    assert slope_at(points, 5.8) == pytest.approx(0.35)
    assert slope_at([(0.0, -20.0)], 0.0) == 1.0


def test_predict_gain_follows_the_limiter_model() -> None:
    ceiling = -2.5
    quiet_peaks = Loudness(integrated_lufs=-30.0, true_peak_db=-20.0, lra=3.0)
    assert predict_gain(quiet_peaks, -16.0, ceiling) == pytest.approx(14.0)  # limiter idle: plain gain
    assert gain_slope(quiet_peaks, 14.0, ceiling) == 1.0
    tts = Loudness(integrated_lufs=-18.6, true_peak_db=0.1, lra=1.3)
    gain = predict_gain(tts, -15.8, ceiling)
    assert gain > -15.8 + 18.6  # more than plain: the limiter takes some back
    excess = tts.true_peak_db + gain - ceiling
    assert tts.integrated_lufs + gain - limiter_loss(excess) == pytest.approx(-15.8)
    assert 0 < gain_slope(tts, gain, ceiling) < 1
    assert limiter_loss(0.0) == 0.0 and limiter_loss(10.0) > limiter_loss(5.0) > 0
