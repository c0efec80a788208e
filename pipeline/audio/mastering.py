"""Mastering: a recording → a loudness-normalised, tagged CBR MP3, in this process.

The loudness model is ``pipeline.audio.loudness``; decoding, FFmpeg's filters and the
encoder are ``pipeline.audio.libav``; the MP3's duration, tags and digest ``pipeline.audio.files``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.audio.ffmpeg import probe_audio
from pipeline.audio.files import atomic, mp3_duration_ms, sha256_file, write_tags
from pipeline.audio.libav import decode_pcm, encode_mp3, filter_pcm
from pipeline.audio.loudness import Loudness, db_to_linear, gain_slope, measure_pcm, predict_gain
from pipeline.audio.types import Id3Tags, MasterResult
from pipeline.config import AudioSettings

log = logging.getLogger(__name__)

#: A signal further than this (LU) from the aimed loudness is encoded once more.
LOUDNESS_TOLERANCE_LU = 0.4
#: Encodings at most, the first included.
MAX_ENCODES = 3
#: MP3 at 64 kbps measures a little quieter than the PCM it came from (about 0.4 LU on
#: TTS speech, nothing on a sine); aiming this much above the target usually saves a
#: second encoding.
ENCODER_LOSS_LU = 0.2
#: The limiter ceiling starts this far below the true-peak limit (MP3 adds overshoot).
PEAK_HEADROOM_DB = 1.0
_MAX_GAIN_DB = 40.0


def limiter_options(ceiling_db: float) -> str:
    """``alimiter``'s options: a 5 ms lookahead limiter with its latency compensated."""
    return f"limit={db_to_linear(ceiling_db):.4f}:level=disabled:attack=5:release=50:latency=1"


def master_mp3(
    src_wav: Path,
    dst_mp3: Path,
    *,
    settings: AudioSettings,
    tags: Id3Tags,
    source_loudness: Loudness | None = None,
) -> MasterResult:
    """Loudness-normalise ``src_wav`` (any format ffmpeg reads) into a tagged CBR MP3.

    All in this process, with FFmpeg's libraries (PyAV): a gain in front of FFmpeg's
    lookahead limiter (ceiling ``PEAK_HEADROOM_DB`` under ``true_peak_db``; ffmpeg's
    loudnorm alone falls into its dynamic mode on TTS speech) is predicted from the
    source's loudness and peak (``predict_gain``); the limited signal is measured in
    memory (``measure_pcm``: BS.1770-4 loudness, 4× true peak); only when that misses the
    target by more than ``LOUDNESS_TOLERANCE_LU`` or the peak rises too close to the limit
    is the gain corrected and the limiter run again (at most ``MAX_ENCODES`` passes). Then
    libmp3lame encodes the last pass once. ``MasterResult.loudness`` is that measurement of
    the signal fed to the encoder; the MP3 itself measures about 0.4 LU quieter on speech
    (``ENCODER_LOSS_LU`` aims that much above) and up to ~0.5 dB higher in true peak (the
    ceiling's headroom), as the tests check on the output; ``MasterResult.encodes`` counts
    the limiter passes.

    ``source_loudness`` (``ingest_audio``'s measurement) spares measuring the source; the
    duration comes from the MP3's Xing header, as ffprobe reads it. Silence is encoded as
    it is. The same input gives the same bytes. No process is started.
    """
    what = f"encoding {src_wav}"
    pcm = decode_pcm(src_wav, settings=settings, what=what)
    rate = settings.sample_rate
    source = source_loudness or measure_pcm(pcm, rate, true_peak=True, scale=1 / 32768)
    aim = settings.target_lufs + ENCODER_LOSS_LU
    ceiling = settings.true_peak_db - PEAK_HEADROOM_DB
    gain = 0.0 if source.silent else min(predict_gain(source, aim, ceiling), _MAX_GAIN_DB)
    tried: list[tuple[float, float]] = []
    signal = None
    for passes in range(1, MAX_ENCODES + 1):
        signal = None  # the last pass's samples go before the next pass's come
        signal = _limited(pcm, rate, gain_db=gain, ceiling_db=ceiling, what=what)
        out = measure_pcm(signal, rate, true_peak=True)
        if source.silent or out.silent:
            break
        off = aim - out.integrated_lufs
        over = out.true_peak_db - (ceiling + PEAK_HEADROOM_DB / 2)
        if (abs(off) <= LOUDNESS_TOLERANCE_LU and over <= 0) or passes == MAX_ENCODES:
            break
        tried.append((gain, out.integrated_lufs))
        if over > 0:
            ceiling -= over + 0.2
        gain = min(gain + off / _slope(tried, source, gain, ceiling), _MAX_GAIN_DB)
        log.debug("%s: %+.2f dB gave %s; trying %+.2f dB", src_wav, tried[-1][0], out, gain)
    if not source.silent and (abs(aim - out.integrated_lufs) > 1.0 or out.true_peak_db > settings.true_peak_db - 0.5):
        log.warning(
            "%s: %.1f LUFS, %.1f dBTP after mastering (target %.1f LUFS, peak %.1f dBTP)",
            src_wav,
            out.integrated_lufs,
            out.true_peak_db,
            settings.target_lufs,
            settings.true_peak_db,
        )
    with atomic(dst_mp3, ".mp3") as tmp:
        encode_mp3(signal, tmp, settings=settings, what=what)
        duration_ms = mp3_duration_ms(tmp)
        if duration_ms is None:
            duration_ms = probe_audio(tmp, settings=settings).duration_ms
        write_tags(tmp, tags)
        digest, size = sha256_file(tmp)
    return MasterResult(dst_mp3, duration_ms, out, size, digest, round(gain, 2), passes)


def _slope(tried: list[tuple[float, float]], source: Loudness, gain: float, ceiling: float) -> float:
    """LU per dB: between the last two tries if there are two, else from the model."""
    if len(tried) >= 2:
        (g0, l0), (g1, l1) = tried[-2], tried[-1]
        if abs(g1 - g0) > 0.05:
            return min(max((l1 - l0) / (g1 - g0), 0.15), 1.0)
    return gain_slope(source, gain, ceiling)


def _limited(pcm: Any, rate: int, *, gain_db: float, ceiling_db: float, what: str) -> Any:
    """``pcm`` (mono s16) through FFmpeg's ``volume`` and ``alimiter``: float32 samples."""
    chain = [
        ("volume", f"{gain_db:.2f}dB"),
        ("alimiter", limiter_options(ceiling_db)),
        ("aformat", "sample_fmts=fltp:channel_layouts=mono"),
    ]
    return filter_pcm(pcm, rate, chain, what=what, step="the limiter")


def pcm_loudness(path: Path, *, settings: AudioSettings) -> Loudness:
    """The loudness of ``path`` as mastering measures it: decoded in this process to mono at
    ``settings.sample_rate``, then ``measure_pcm`` (true peak included); no process started.

    ``compute_loudness`` is ffmpeg's own ebur128 on the file as it is (stereo counted as two
    channels), the reference the tests hold this to.
    """
    pcm = decode_pcm(path, settings=settings, what=f"measuring loudness of {path}")
    return measure_pcm(pcm, settings.sample_rate, true_peak=True, scale=1 / 32768)
