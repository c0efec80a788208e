"""The ffmpeg adapter, reading and analysing: the only code that runs ffmpeg and ffprobe
(with ``pipeline.audio.ffmpeg_write``, its writers).

``probe_*`` functions read, ``compute_*`` functions analyse, ``parse_*`` functions read the
tools' captured output with the regexes at module level (tested on captured text); the
loudness arithmetic and the parsing of ebur128's summaries live in ``pipeline.audio.loudness``.
Binaries and limits come from ``AudioSettings``. Every failure is a ``RenderError`` naming
the file and what is wrong with it.
"""

from __future__ import annotations

import json
import re
import subprocess
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.audio.files import wav_info
from pipeline.audio.loudness import Loudness, parse_ebur128
from pipeline.audio.types import AudioInfo, Levels
from pipeline.config import AudioSettings
from pipeline.errors import RenderError

_FFMPEG_ERROR_RE = re.compile(r"^(?:\[[^\]]*\] )?\[(?:error|fatal|panic)\] (?P<msg>.+)$", re.M)
_ESTIMATED_RE = re.compile(r"Estimating duration from bitrate")
_SILENCE_START_RE = re.compile(r"silence_start: (?P<t>-?\d+(?:\.\d+)?)")
_SILENCE_END_RE = re.compile(r"silence_end: (?P<t>-?\d+(?:\.\d+)?)")
#: What counts as silence when checking a reading (quieter than a far, soft voice).
LEVEL_SILENCE_DB = -45
_MEAN_VOLUME_RE = re.compile(r"mean_volume: (?P<v>-?[\d.]+|-inf) dB")
_MAX_VOLUME_RE = re.compile(r"max_volume: (?P<v>-?[\d.]+|-inf) dB")
_N_SAMPLES_RE = re.compile(r"n_samples: (?P<n>\d+)")
_HIST_0DB_RE = re.compile(r"histogram_0db: (?P<n>\d+)")


# --- running the tools ------------------------------------------------------------


def run(args: Sequence[str], *, settings: AudioSettings, what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=settings.timeout_s,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise RenderError(
            f"{what}: {args[0]!r} is not installed or not on PATH; run `make setup` "
            "or set [audio] ffmpeg/ffprobe in loa.toml"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise RenderError(
            f"{what}: {Path(args[0]).name} did not finish within {settings.timeout_s:g} s; "
            "raise [audio] timeout_s or check the file"
        ) from exc


def ffmpeg_args(settings: AudioSettings, *args: str) -> list[str]:
    return [settings.ffmpeg, "-nostdin", "-hide_banner", "-nostats", *args]


def error_lines(stderr: str) -> list[str]:
    return [m.group("msg").strip() for m in _FFMPEG_ERROR_RE.finditer(stderr)]


def tail(stderr: str, lines: int = 3) -> str:
    kept = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "no message"


def to_float(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 0.0


# --- reading ------------------------------------------------------------------------


def probe_audio(path: Path, *, settings: AudioSettings) -> AudioInfo:
    """What ffprobe says about the first audio stream of ``path`` (reads headers only).

    The duration is the container's claim, so a long upload can be refused before it
    is decoded; ``ingest_audio`` checks it against what really decodes.
    """
    return _probe(path, settings=settings)[0]


def _probe(path: Path, *, settings: AudioSettings) -> tuple[AudioInfo, bool]:
    """The info, and whether its duration is only estimated (MP3 with no Xing/VBRI header)."""
    if not path.is_file():
        raise RenderError(f"{path}: no such audio file")
    if path.stat().st_size == 0:
        raise RenderError(f"{path}: the file is empty (0 bytes); upload the recording again")
    proc = run(
        [
            settings.ffprobe,
            "-v",
            "warning",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            str(path),
        ],
        settings=settings,
        what=f"reading {path}",
    )
    if proc.returncode != 0:
        raise RenderError(
            f"{path}: not a readable audio file ({tail(proc.stderr, 2)}); "
            "export it as MP3, WAV, M4A or OGG and try again"
        )
    data: dict[str, Any] = json.loads(proc.stdout or "{}")
    streams: list[dict[str, Any]] = data.get("streams", [])
    fmt: dict[str, Any] = data.get("format", {})
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if audio is None:
        found = ", ".join(sorted({str(s.get("codec_type")) for s in streams})) or "nothing"
        raise RenderError(f"{path}: has no audio stream (found {found}); give a sound recording")
    duration = to_float(audio.get("duration")) or to_float(fmt.get("duration"))
    streamed = duration <= 0  # e.g. a browser's MediaRecorder WebM: no duration in the header
    if streamed:
        duration = probe_packets_duration(path, settings=settings)
    if duration <= 0:
        raise RenderError(f"{path}: contains no audio (duration 0 s)")
    info = AudioInfo(
        duration_ms=round(duration * 1000),
        codec=str(audio.get("codec_name", "")),
        sample_rate=int(to_float(audio.get("sample_rate"))),
        channels=int(audio.get("channels", 0)),
        format_name=str(fmt.get("format_name", "")),
        bit_rate=int(to_float(audio.get("bit_rate")) or to_float(fmt.get("bit_rate"))),
    )
    return info, streamed or _ESTIMATED_RE.search(proc.stderr) is not None


def probe_packets_duration(path: Path, *, settings: AudioSettings, demuxers: tuple[str, ...] = ()) -> float:
    """The end of the last audio packet, in seconds, for containers that do not state a duration
    (a browser's WebM). Read with the ``file`` protocol only, and ``demuxers`` only when given."""
    only = ["-format_whitelist", ",".join(demuxers)] if demuxers else []
    proc = run(
        [
            *[settings.ffprobe, "-v", "error", "-protocol_whitelist", "file", *only, "-select_streams", "a:0"],
            *["-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", f"file:{path.resolve()}"],
        ],
        settings=settings,
        what=f"reading the packets of {path}",
    )
    end = 0.0
    for line in proc.stdout.splitlines():
        pts, _, dur = line.partition(",")
        end = max(end, to_float(pts) + to_float(dur))
    return end


def probe_fast(path: Path, *, settings: AudioSettings) -> tuple[AudioInfo, bool]:
    """``_probe``, but a PCM WAV (what espeak-ng writes) is read from its header here."""
    if path.is_file() and path.stat().st_size > 0:
        try:
            info = wav_info(path)
        except (wave.Error, EOFError, ZeroDivisionError):
            pass  # not a plain PCM WAV: ask ffprobe
        else:
            if info.duration_ms > 0:
                return info, False
    return _probe(path, settings=settings)


def probe_restricted(
    path: Path, *, settings: AudioSettings, demuxers: Sequence[str]
) -> tuple[dict[str, Any] | None, str]:
    """ffprobe's format and streams of ``path`` as JSON, read with the ``file`` protocol and
    ``demuxers`` only; ``None`` and ffprobe's last message line when it cannot read it."""
    proc = run(
        [
            settings.ffprobe,
            *["-v", "error", "-protocol_whitelist", "file", "-format_whitelist", ",".join(demuxers)],
            *["-print_format", "json", "-show_format", "-show_streams"],
            f"file:{path.resolve()}",
        ],
        settings=settings,
        what=f"reading {path}",
    )
    if proc.returncode != 0:
        return None, tail(proc.stderr, 1)
    data: dict[str, Any] = json.loads(proc.stdout or "{}")
    return data, ""


def ffmpeg_version(settings: AudioSettings) -> str:
    """The ffmpeg version string (e.g. "5.1.6-0+deb12u1"), or "unknown"."""
    try:
        done = run([settings.ffmpeg, "-version"], settings=settings, what="ffmpeg -version")
    except RenderError:
        return "unknown"
    first = done.stdout.split("\n", 1)[0]
    return first.replace("ffmpeg version ", "").split(" ")[0] or "unknown"


# --- analysing ----------------------------------------------------------------------


def compute_loudness(path: Path, *, settings: AudioSettings) -> Loudness:
    """EBU R 128 integrated loudness, true peak and loudness range of ``path``."""
    return _measure(path, "anull", settings=settings, what=f"measuring loudness of {path}")


def _measure(path: Path, chain: str, *, settings: AudioSettings, what: str) -> Loudness:
    graph = f"{chain},ebur128=peak=true:framelog=verbose"
    proc = run(
        ffmpeg_args(settings, "-i", str(path), "-map", "0:a:0", "-af", graph, "-f", "null", "-"),
        settings=settings,
        what=what,
    )
    loudness = parse_ebur128(proc.stderr) if proc.returncode == 0 else None
    if loudness is None:
        raise RenderError(f"{what}: ffmpeg failed ({tail(proc.stderr)})")
    return loudness


def parse_silences(stderr: str) -> list[tuple[int, int]]:
    """``silencedetect``'s stretches of silence as (start_ms, end_ms)."""
    starts = [round(float(m.group("t")) * 1000) for m in _SILENCE_START_RE.finditer(stderr)]
    ends = [round(float(m.group("t")) * 1000) for m in _SILENCE_END_RE.finditer(stderr)]
    return [(max(s, 0), e) for s, e in zip(starts, ends, strict=False)]


def parse_levels(stderr: str, duration_ms: int) -> Levels:
    """``volumedetect`` and ``silencedetect`` output (one ffmpeg run) → ``Levels``."""

    def db(regex: re.Pattern[str]) -> float:
        m = regex.search(stderr)
        return float("-inf") if m is None or m.group("v") == "-inf" else float(m.group("v"))

    n = _N_SAMPLES_RE.search(stderr)
    hist = _HIST_0DB_RE.search(stderr)
    samples = int(n.group("n")) if n else 0
    peak = db(_MAX_VOLUME_RE)
    at_top = int(hist.group("n")) if hist and peak >= -0.1 else 0
    silent_ms = 0
    ends = [round(float(m.group("t")) * 1000) for m in _SILENCE_END_RE.finditer(stderr)]
    starts = [round(float(m.group("t")) * 1000) for m in _SILENCE_START_RE.finditer(stderr)]
    for i, start in enumerate(starts):
        end = ends[i] if i < len(ends) else duration_ms  # silence that runs to the end
        silent_ms += max(0, min(end, duration_ms) - max(start, 0))
    return Levels(
        duration_ms=duration_ms,
        mean_db=db(_MEAN_VOLUME_RE),
        peak_db=peak,
        clipped_share=at_top / samples if samples else 0.0,
        silent_share=min(1.0, silent_ms / duration_ms) if duration_ms > 0 else 1.0,
    )


def compute_levels(path: Path, *, settings: AudioSettings) -> Levels:
    """Mean and peak level, clipping and silence of a recording, in one ffmpeg run."""
    info = probe_audio(path, settings=settings)
    chain = f"aformat=sample_fmts=s16:channel_layouts=mono,silencedetect=n={LEVEL_SILENCE_DB}dB:d=0.4,volumedetect"
    proc = run(
        ffmpeg_args(settings, "-v", "level+info", "-i", str(path), "-map", "0:a:0", "-af", chain, "-f", "null", "-"),
        settings=settings,
        what=f"checking the levels of {path}",
    )
    if proc.returncode != 0:
        raise RenderError(f"{path}: cannot measure the levels ({tail(proc.stderr)})")
    return parse_levels(proc.stderr, info.duration_ms)
