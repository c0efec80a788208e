"""Audio fixtures made at test time with real ffmpeg and espeak-ng (no committed blobs)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

SPEECH_VI = "Kính thưa bà con nhân dân xã Tả Van. Hôm nay có cuộc họp thôn lúc tám giờ sáng."


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *args], check=True, timeout=60)


def _sine(dst: Path, seconds: float, rate: int, channels: int, volume_db: float, codec: list[str]) -> Path:
    ffmpeg(
        "-f", "lavfi", "-i", f"sine=frequency=1000:sample_rate={rate}:duration={seconds}",
        "-af", f"volume={volume_db}dB", "-ac", str(channels), *codec, str(dst),
    )  # fmt: skip
    return dst


def sine(dst: Path, *, seconds: float = 2.0, rate: int = 48000, channels: int = 2, volume_db: float = -6) -> Path:
    """A 1 kHz sine; WAV or MP3 by the suffix of ``dst``."""
    codec = ["-c:a", "libmp3lame", "-b:a", "64k"] if dst.suffix == ".mp3" else ["-c:a", "pcm_s16le"]
    return _sine(dst, seconds, rate, channels, volume_db, codec)


def speech(dst: Path, text: str = SPEECH_VI) -> Path:
    """Vietnamese speech from espeak-ng (WAV, 22.05 kHz mono)."""
    subprocess.run(["espeak-ng", "-v", "vi", "-b", "1", "-w", str(dst), "--stdin"], input=text.encode(), check=True)
    return dst


def padded(dst: Path, *, silence_s: float = 1.5, tone_s: float = 1.0) -> Path:
    """Silence, a tone, silence: for trimming."""
    ffmpeg(
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={tone_s}",
        "-af", f"adelay={round(silence_s * 1000)},apad=pad_dur={silence_s},volume=-6dB",
        "-c:a", "pcm_s16le", str(dst),
    )  # fmt: skip
    return dst


def quiet_speech(dst: Path, src: Path, *, gain_db: float = -20) -> Path:
    """A quiet recording: speech turned down, stereo 48 kHz, as a phone might give it."""
    ffmpeg(
        "-i",
        str(src),
        "-af",
        f"volume={gain_db}dB",
        "-ac",
        "2",
        "-ar",
        "48000",
        "-c:a",
        "pcm_s16le",
        str(dst),
    )
    return dst


def garbled(dst: Path, src_mp3: Path) -> Path:
    """An MP3 whose middle half is random bytes."""
    data = bytearray(src_mp3.read_bytes())
    rng = random.Random(7)
    for i in range(len(data) // 4, len(data) * 3 // 4):
        data[i] = rng.randrange(256)
    dst.write_bytes(bytes(data))
    return dst


def truncated(dst: Path, src_mp3: Path, *, keep: float = 0.3) -> Path:
    """An MP3 cut short, as an interrupted upload leaves it."""
    data = src_mp3.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def silence(dst: Path, *, seconds: float) -> Path:
    """Digital silence, 44.1 kHz mono WAV."""
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono", "-t", str(seconds), "-c:a", "pcm_s16le", str(dst))
    return dst


def long_silence(dst: Path, *, hours: float = 3) -> Path:
    """Hours of silence written in about a second (8-bit, 2 kHz)."""
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=2000:cl=mono",
        "-t",
        str(round(hours * 3600)),
        "-c:a",
        "pcm_u8",
        str(dst),
    )
    return dst


def mp3_bytes(seconds: float = 0.6, rate: int = 24000) -> bytes:
    """Real MP3 bytes like Google's TTS answer (mono, 24 kHz, 32 kbps, no Xing header)."""
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi",
         "-i", f"sine=frequency=440:sample_rate={rate}:duration={seconds}", "-c:a", "libmp3lame",
         "-b:a", "32k", "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3", "-"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    return out.stdout
