"""A recording or a TTS output → the working WAV: mono 16-bit at ``settings.sample_rate``,
silence trimmed from both ends, loudness measured on the way (decoded in this process).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.audio.ffmpeg import probe_fast
from pipeline.audio.files import wav_info, write_wav
from pipeline.audio.libav import CHUNK, decode_pcm
from pipeline.audio.loudness import measure_pcm
from pipeline.audio.types import AudioInfo
from pipeline.config import AudioSettings
from pipeline.errors import RenderError

#: Silence below this level at either end of a recording is trimmed.
SILENCE_THRESHOLD_DB = -50
#: Silence kept at each end after trimming, so speech does not start abruptly.
TRIM_PAD_MS = 200
#: Only silence at least this long (s) at an end is trimmed.
SILENCE_MIN_S = 0.3


def ingest_audio(src: Path, dst_wav: Path, *, settings: AudioSettings, trim_silence: bool = True) -> AudioInfo:
    """Any audio ffmpeg reads → mono 16-bit WAV at ``settings.sample_rate``, ends trimmed.

    Refuses files longer than ``max_recording_minutes`` from their header (before
    decoding), files with decoding errors, files that decode much shorter than their
    header says (an interrupted upload), and files that are silent throughout.

    One ffmpeg run (a PCM WAV's header is read here, anything else is probed first by
    ffprobe). The returned ``loudness`` is measured in that run on the converted signal
    before trimming (what is trimmed is below −50 dBFS, under ebur128's gates): integrated
    loudness and the sample peak (``true_peak_db`` is nan; true peak would cost a third of
    the run). Pass it to ``master_mp3(source_loudness=…)`` to spare that a measuring run.
    """
    info, estimated = probe_fast(src, settings=settings)
    limit_ms = settings.max_recording_minutes * 60_000
    if info.duration_ms > limit_ms:
        raise RenderError(
            f"{src}: {info.duration_ms / 60_000:.1f} minutes long; recordings may be at most "
            f"{settings.max_recording_minutes} minutes, split or shorten it"
        )
    pcm = decode_pcm(src, settings=settings, what=f"converting {src}")
    loudness = measure_pcm(pcm, settings.sample_rate, true_peak=False, scale=1 / 32768)
    decoded_ms = round(pcm.size * 1000 / settings.sample_rate)
    if not estimated and decoded_ms < info.duration_ms * 0.9 - 500:
        raise RenderError(
            f"{src}: cut short: the header promises {info.duration_ms / 1000:.1f} s but only "
            f"{decoded_ms / 1000:.1f} s decode; the upload is probably incomplete"
        )
    first, last = 0, pcm.size
    if not trim_silence:
        if pcm.size == 0:
            raise RenderError(f"{src}: decodes to no audio at all; export or record it again")
    else:
        first, last = trim_points(pcm, settings.sample_rate)
        if last - first <= 2 * TRIM_PAD_MS * settings.sample_rate // 1000:
            raise RenderError(f"{src}: contains only silence; check the microphone and record it again")
    write_wav(dst_wav, pcm[first:last], settings.sample_rate)
    return replace(wav_info(dst_wav), loudness=loudness)


def trim_points(pcm: Any, rate: int) -> tuple[int, int]:
    """First and last sample to keep: silence (under ``SILENCE_THRESHOLD_DB``, at least
    ``SILENCE_MIN_S`` long) cut from either end, ``TRIM_PAD_MS`` of it kept."""
    import numpy as np

    threshold = 10 ** (SILENCE_THRESHOLD_DB / 20) * 32767
    first_loud = last_loud = -1
    for start in range(0, pcm.size, CHUNK):  # a second at a time: no copy of a long recording
        hits = np.flatnonzero(np.abs(pcm[start : start + CHUNK].astype(np.int32)) >= threshold)
        if hits.size:
            first_loud = start + int(hits[0])
            break
    if first_loud < 0:
        return 0, 0
    for end in range(pcm.size, 0, -CHUNK):
        hits = np.flatnonzero(np.abs(pcm[max(end - CHUNK, 0) : end].astype(np.int32)) >= threshold)
        if hits.size:
            last_loud = max(end - CHUNK, 0) + int(hits[-1])
            break
    pad = TRIM_PAD_MS * rate // 1000
    first, last = 0, pcm.size
    if first_loud >= SILENCE_MIN_S * rate:
        first = first_loud - pad
    if pcm.size - 1 - last_loud >= SILENCE_MIN_S * rate:
        last = last_loud + 1 + pad
    return first, last
