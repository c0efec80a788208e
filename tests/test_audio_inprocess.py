"""Mastering in-process (PyAV + pyloudnorm) held to ffmpeg's own ebur128, on generated fixtures."""

from __future__ import annotations

import math
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from mutagen.id3 import ID3

from pipeline.audio import ffmpeg, ingest, libav, mastering
from pipeline.audio.loudness import SILENCE_LUFS, measure_pcm
from pipeline.audio.types import Id3Tags
from pipeline.config import AudioSettings
from tests import audio_fixtures as fx

pytestmark = pytest.mark.audio

S = AudioSettings()
RATE = S.sample_rate
TAGS = Id3Tags(title="Thông báo tiêm chủng", album="Loa", language="vi", comment="bulletin 7")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inproc")
    speech = fx.speech(d / "speech.wav")
    work = d / "speech44.wav"
    ingest.ingest_audio(speech, work, settings=S, trim_silence=False)
    return {
        "speech": speech,  # 22.05 kHz, as espeak-ng writes it
        "speech44": work,  # the working format: mono 16-bit 44.1 kHz
        "quiet44": fx.quiet_speech(d / "quiet.wav", work, gain_db=-14),
        "sine44": fx.sine(d / "sine.wav", seconds=3.0, rate=RATE, channels=1, volume_db=-12),
    }


def _read_float(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
    return data[:, 0] / 32768.0


@pytest.mark.parametrize(("name", "lu", "db"), [("speech44", 0.3, 0.2), ("sine44", 0.1, 0.1)])
def test_loudness_in_memory_agrees_with_ffmpeg_ebur128(
    inputs: dict[str, Path], name: str, lu: float, db: float
) -> None:
    reference = ffmpeg.compute_loudness(inputs[name], settings=S)  # ffmpeg -af ebur128=peak=true
    ours = measure_pcm(_read_float(inputs[name]), RATE, true_peak=True)
    assert ours.integrated_lufs == pytest.approx(reference.integrated_lufs, abs=lu)
    assert ours.true_peak_db == pytest.approx(reference.true_peak_db, abs=db)
    assert ours.sample_peak_db is not None and ours.sample_peak_db <= ours.true_peak_db + 1e-9
    assert math.isnan(measure_pcm(_read_float(inputs[name]), RATE, true_peak=False).true_peak_db)


def test_pcm_loudness_of_a_file_agrees_with_ffmpeg(inputs: dict[str, Path]) -> None:
    # the 22.05 kHz file is resampled in-process first, as mastering sees it
    reference = ffmpeg.compute_loudness(inputs["speech"], settings=S)
    ours = mastering.pcm_loudness(inputs["speech"], settings=S)
    assert ours.integrated_lufs == pytest.approx(reference.integrated_lufs, abs=0.3)
    assert ours.true_peak_db == pytest.approx(reference.true_peak_db, abs=0.3)


def test_true_peak_finds_the_peak_between_samples() -> None:
    # a sine at a quarter of the rate, 45° off: every sample is at 0.707 of the real peak,
    # 5 s long so that the peak is looked for across the oversampler's chunk edges
    n = np.arange(5 * RATE)
    fade = np.minimum(1.0, np.minimum(n, n.size - 1 - n) / (RATE / 10))  # no click at either end
    x = 0.5 * np.sin(2 * np.pi * n / 4 + np.pi / 4) * fade
    loud = measure_pcm(x, RATE, true_peak=True)
    assert loud.sample_peak_db == pytest.approx(20 * math.log10(0.5 * math.sqrt(0.5)), abs=0.01)
    assert loud.true_peak_db == pytest.approx(20 * math.log10(0.5), abs=0.05)


def test_silence_and_too_short_signals_measure_as_ebur128_reports_them() -> None:
    silent = measure_pcm(np.zeros(RATE), RATE, true_peak=True)
    assert silent.silent and silent.integrated_lufs == SILENCE_LUFS
    assert silent.true_peak_db == float("-inf") and silent.sample_peak_db == float("-inf")
    blip = measure_pcm(0.5 * np.ones(RATE // 4), RATE, true_peak=False)  # 250 ms: no gating block
    assert blip.silent and blip.sample_peak_db == pytest.approx(20 * math.log10(0.5))
    assert measure_pcm(np.zeros(0), RATE, true_peak=True).silent


def test_trim_points_cut_long_silence_and_keep_a_pad() -> None:
    pad = ingest.TRIM_PAD_MS * RATE // 1000
    tone = np.where(np.arange(RATE) % 2, 8000, -8000).astype(np.int16)
    quiet = np.full(RATE, 50, dtype=np.int16)  # under −50 dBFS: silence
    first, last = ingest.trim_points(np.concatenate([quiet, tone, quiet]), RATE)
    assert (first, last) == (RATE - pad, 2 * RATE + pad)
    short = np.zeros(RATE // 10, dtype=np.int16)  # 100 ms: shorter than SILENCE_MIN_S, kept
    assert ingest.trim_points(np.concatenate([short, tone, short]), RATE) == (0, RATE + 2 * short.size)
    assert ingest.trim_points(quiet, RATE) == (0, 0)


def test_master_starts_no_process_and_decodes_back_to_its_length(
    inputs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was started: {args[0]!r}")

    wav = tmp_path / "in.wav"
    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    ingested = ingest.ingest_audio(inputs["speech"], wav, settings=S)
    assert ingested.loudness is not None
    result = mastering.master_mp3(wav, tmp_path / "out.mp3", settings=S, tags=TAGS, source_loudness=ingested.loudness)
    monkeypatch.undo()
    # decoded back by ffmpeg, the MP3 is as long as the WAV it came from (gapless header)
    decoded = tmp_path / "back.wav"
    fx.ffmpeg("-i", str(result.path), "-c:a", "pcm_s16le", str(decoded))
    with wave.open(str(decoded), "rb") as w:
        back_ms = w.getnframes() * 1000 / w.getframerate()
    assert back_ms == pytest.approx(ingested.duration_ms, abs=30)
    assert result.duration_ms == pytest.approx(ingested.duration_ms, abs=60)
    assert ffmpeg.probe_audio(result.path, settings=S).duration_ms == pytest.approx(result.duration_ms, abs=1)
    # the tags, and one ID3v2.4 header in front of the audio
    tags = ID3(str(result.path))
    assert tags.version == (2, 4, 0)
    assert tags["TIT2"].text == [TAGS.title] and tags["TLAN"].text == ["vie"]
    assert tags.getall("COMM")[0].text == ["bulletin 7"]
    assert result.path.read_bytes().count(b"ID3") == 1
    # and it is at the target, as ffmpeg measures the MP3
    measured = ffmpeg.compute_loudness(result.path, settings=S)
    assert measured.integrated_lufs == pytest.approx(S.target_lufs, abs=1.0)
    assert measured.true_peak_db <= S.true_peak_db


def test_quiet_input_is_brought_up_and_is_deterministic(inputs: dict[str, Path], tmp_path: Path) -> None:
    a = mastering.master_mp3(inputs["quiet44"], tmp_path / "a.mp3", settings=S, tags=TAGS)
    b = mastering.master_mp3(inputs["quiet44"], tmp_path / "b.mp3", settings=S, tags=TAGS)
    assert a.sha256 == b.sha256 and a.path.read_bytes() == b.path.read_bytes()
    assert a.gain_db > 10
    assert a.loudness.integrated_lufs == pytest.approx(S.target_lufs + mastering.ENCODER_LOSS_LU, abs=0.4)


def test_stereo_and_other_rates_are_resampled_in_process(tmp_path: Path) -> None:
    src = fx.sine(tmp_path / "st.wav", seconds=1.5, rate=48000, channels=2)
    pcm = libav.decode_pcm(src, settings=S, what="test")
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert pcm.size == pytest.approx(1.5 * RATE, abs=RATE // 100)


@pytest.mark.parametrize("seconds", [0.5, 3.3, 12.05])
def test_streamed_loudness_equals_pyloudnorm(inputs: dict[str, Path], seconds: float) -> None:
    import pyloudnorm

    x = _read_float(inputs["speech44"])
    x = np.tile(x, int(seconds * RATE) // x.size + 1)[: int(seconds * RATE)]  # past one 10 s chunk
    pcm = np.round(x * 32768).astype(np.int16)
    ours = measure_pcm(pcm, RATE, true_peak=False, scale=1 / 32768).integrated_lufs
    theirs = pyloudnorm.Meter(RATE).integrated_loudness(pcm / 32768)
    assert ours == pytest.approx(theirs, abs=1e-6)
