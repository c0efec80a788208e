"""WAV and MP3 files without running anything: writes that land atomically, WAV headers
and samples, digital silence, the MP3 Xing header's duration, ID3 tags (mutagen), sha256.

Every writer writes a temporary name in the destination directory and renames it into
place, so a crash never leaves half a file.
"""

from __future__ import annotations

import hashlib
import os
import struct
import uuid
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from mutagen.id3 import COMM, ID3, TALB, TIT2, TLAN, TPE1

from pipeline.audio.loudness import SILENCE
from pipeline.audio.types import AudioInfo, Id3Tags
from pipeline.config import AudioSettings
from pipeline.errors import RenderError

_LANG3 = {"vi": "vie", "en": "eng"}


@contextmanager
def scratch(dst: Path, suffix: str) -> Iterator[Path]:
    """A temporary path next to ``dst``, removed when the block ends."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".{dst.name}.{uuid.uuid4().hex[:12]}.tmp{suffix}"
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic(dst: Path, suffix: str) -> Iterator[Path]:
    """A temporary path next to ``dst``; renamed onto ``dst`` only if the block succeeds."""
    with scratch(dst, suffix) as tmp:
        yield tmp
        os.replace(tmp, dst)


def wav_info(path: Path) -> AudioInfo:
    with wave.open(str(path), "rb") as w:
        rate, frames, channels = w.getframerate(), w.getnframes(), w.getnchannels()
        width = w.getsampwidth()
    return AudioInfo(
        duration_ms=round(frames * 1000 / rate),
        codec=f"pcm_s{8 * width}le",
        sample_rate=rate,
        channels=channels,
        format_name="wav",
        bit_rate=rate * channels * 8 * width,
    )


def write_wav(dst: Path, pcm: Any, rate: int) -> None:
    import numpy as np

    with atomic(dst, ".wav") as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.ascontiguousarray(pcm, dtype="<i2").data)


def make_silence(dst_wav: Path, ms: int, *, settings: AudioSettings) -> AudioInfo:
    """``ms`` milliseconds of digital silence, mono 16-bit at ``settings.sample_rate``."""
    if ms <= 0:
        raise RenderError(f"{dst_wav}: a pause must be longer than 0 ms (got {ms})")
    rate = settings.sample_rate
    frames = ms * rate // 1000
    with atomic(dst_wav, ".wav") as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * frames)
    return replace(wav_info(dst_wav), loudness=SILENCE)


#: MPEG audio version bits → (samples per frame, side-info bytes mono, stereo).
_MPEG_LAYOUT = {3: (1152, 17, 32), 2: (576, 9, 17), 0: (576, 9, 17)}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mp3_duration_ms(path: Path) -> int | None:
    """Frames × samples per frame from the Xing/Info header of an untagged MP3 (as ffprobe)."""
    with path.open("rb") as f:
        head = f.read(64)
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    version, rate_index, mono = (head[1] >> 3) & 3, (head[2] >> 2) & 3, (head[3] >> 6) == 3
    if version not in _MPEG_LAYOUT or rate_index == 3:
        return None
    samples, side_mono, side_stereo = _MPEG_LAYOUT[version]
    at = 4 + (side_mono if mono else side_stereo)
    if head[at : at + 4] not in (b"Xing", b"Info"):
        return None
    flags, frames = struct.unpack(">II", head[at + 4 : at + 12])
    if not flags & 1:
        return None
    return round(int(frames) * samples * 1000 / _MPEG_RATES[version][rate_index])


def write_tags(path: Path, tags: Id3Tags) -> None:
    lang3 = _LANG3.get(tags.language, tags.language if len(tags.language) == 3 else "und")
    id3 = ID3()  # type: ignore[no-untyped-call]
    id3.add(TIT2(encoding=3, text=[tags.title]))  # type: ignore[no-untyped-call]
    id3.add(TPE1(encoding=3, text=["Loa"]))  # type: ignore[no-untyped-call]
    if tags.album:
        id3.add(TALB(encoding=3, text=[tags.album]))  # type: ignore[no-untyped-call]
    if tags.language:
        id3.add(TLAN(encoding=3, text=[lang3]))  # type: ignore[no-untyped-call]
    if tags.comment:
        id3.add(COMM(encoding=3, lang=lang3, desc="", text=[tags.comment]))  # type: ignore[no-untyped-call]
    id3.save(str(path), v2_version=4)


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest(), path.stat().st_size
