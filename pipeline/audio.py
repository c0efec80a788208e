"""The ffmpeg adapter: the only module that runs ffmpeg and ffprobe.

``probe_*`` functions read, ``compute_*`` functions analyse, the rest write; the loudness
arithmetic and the parsing of ebur128's output live in ``pipeline.loudness``. Binaries and
limits come from ``AudioSettings``; every writer writes a temporary name in the
destination directory and renames it into place, so a crash never leaves half a file.
Every failure is a ``RenderError`` naming the file and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import struct
import subprocess
import uuid
import wave
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mutagen.id3 import COMM, ID3, TALB, TIT2, TLAN, TPE1

from pipeline.config import AudioSettings
from pipeline.errors import RenderError
from pipeline.loudness import (
    SILENCE_LUFS,
    Loudness,
    db_to_linear,
    gain_slope,
    parse_ebur128,
    predict_gain,
)

__all__ = [
    "AudioInfo",
    "Id3Tags",
    "Loudness",
    "MasterResult",
    "compute_loudness",
    "concat_mp3",
    "ingest_audio",
    "make_silence",
    "make_tone",
    "master_mp3",
    "probe_audio",
]

log = logging.getLogger(__name__)

#: Silence below this level at either end of a recording is trimmed.
SILENCE_THRESHOLD_DB = -50
#: Silence kept at each end after trimming, so speech does not start abruptly.
TRIM_PAD_MS = 200
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
#: Digital silence, as ``make_silence`` writes it (nothing to measure).
SILENCE = Loudness(SILENCE_LUFS, true_peak_db=float("-inf"), lra=0.0, sample_peak_db=float("-inf"))
_LANG3 = {"vi": "vie", "en": "eng"}

_FFMPEG_ERROR_RE = re.compile(r"^(?:\[[^\]]*\] )?\[(?:error|fatal|panic)\] (?P<msg>.+)$", re.M)
_ESTIMATED_RE = re.compile(r"Estimating duration from bitrate")
_SILENCE_START_RE = re.compile(r"silence_start: (?P<t>-?\d+(?:\.\d+)?)")
_SILENCE_END_RE = re.compile(r"silence_end: (?P<t>-?\d+(?:\.\d+)?)")


@dataclass(frozen=True, slots=True)
class AudioInfo:
    duration_ms: int
    codec: str
    sample_rate: int
    channels: int
    format_name: str
    bit_rate: int
    #: Measured while converting (``ingest_audio``) or known (``make_silence``); else None.
    loudness: Loudness | None = None


@dataclass(frozen=True, slots=True)
class Id3Tags:
    title: str
    album: str = ""
    language: str = ""  # BCP 47 ("vi") or ISO 639 three-letter code
    comment: str = ""  # e.g. the bulletin id


@dataclass(frozen=True, slots=True)
class MasterResult:
    path: Path
    duration_ms: int
    loudness: Loudness  # measured on the signal fed to the encoder, in the encoding run
    bytes: int
    sha256: str
    gain_db: float
    encodes: int = 1


# --- running the tools ------------------------------------------------------------


def _run(args: Sequence[str], *, settings: AudioSettings, what: str) -> subprocess.CompletedProcess[str]:
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


def _ffmpeg(settings: AudioSettings, *args: str) -> list[str]:
    return [settings.ffmpeg, "-nostdin", "-hide_banner", "-nostats", *args]


def _errors(stderr: str) -> list[str]:
    return [m.group("msg").strip() for m in _FFMPEG_ERROR_RE.finditer(stderr)]


def _tail(stderr: str, lines: int = 3) -> str:
    kept = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "no message"


@contextmanager
def _scratch(dst: Path, suffix: str) -> Iterator[Path]:
    """A temporary path next to ``dst``, removed when the block ends."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".{dst.name}.{uuid.uuid4().hex[:12]}.tmp{suffix}"
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _atomic(dst: Path, suffix: str) -> Iterator[Path]:
    """A temporary path next to ``dst``; renamed onto ``dst`` only if the block succeeds."""
    with _scratch(dst, suffix) as tmp:
        yield tmp
        os.replace(tmp, dst)


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
    proc = _run(
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
            f"{path}: not a readable audio file ({_tail(proc.stderr, 2)}); "
            "export it as MP3, WAV, M4A or OGG and try again"
        )
    data: dict[str, Any] = json.loads(proc.stdout or "{}")
    streams: list[dict[str, Any]] = data.get("streams", [])
    fmt: dict[str, Any] = data.get("format", {})
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if audio is None:
        found = ", ".join(sorted({str(s.get("codec_type")) for s in streams})) or "nothing"
        raise RenderError(f"{path}: has no audio stream (found {found}); give a sound recording")
    duration = _float(audio.get("duration")) or _float(fmt.get("duration"))
    streamed = duration <= 0  # e.g. a browser's MediaRecorder WebM: no duration in the header
    if streamed:
        duration = _packets_duration(path, settings=settings)
    if duration <= 0:
        raise RenderError(f"{path}: contains no audio (duration 0 s)")
    info = AudioInfo(
        duration_ms=round(duration * 1000),
        codec=str(audio.get("codec_name", "")),
        sample_rate=int(_float(audio.get("sample_rate"))),
        channels=int(audio.get("channels", 0)),
        format_name=str(fmt.get("format_name", "")),
        bit_rate=int(_float(audio.get("bit_rate")) or _float(fmt.get("bit_rate"))),
    )
    return info, streamed or _ESTIMATED_RE.search(proc.stderr) is not None


def _packets_duration(path: Path, *, settings: AudioSettings) -> float:
    """The end of the last audio packet, in seconds, for containers that do not state a duration."""
    proc = _run(
        [
            *[settings.ffprobe, "-v", "error", "-select_streams", "a:0"],
            *["-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", str(path)],
        ],
        settings=settings,
        what=f"reading the packets of {path}",
    )
    end = 0.0
    for line in proc.stdout.splitlines():
        pts, _, dur = line.partition(",")
        end = max(end, _float(pts) + _float(dur))
    return end


def _probe_fast(path: Path, *, settings: AudioSettings) -> tuple[AudioInfo, bool]:
    """``_probe``, but a PCM WAV (what espeak-ng writes) is read from its header here."""
    if path.is_file() and path.stat().st_size > 0:
        try:
            info = _wav_info(path)
        except (wave.Error, EOFError, ZeroDivisionError):
            pass  # not a plain PCM WAV: ask ffprobe
        else:
            if info.duration_ms > 0:
                return info, False
    return _probe(path, settings=settings)


def _float(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 0.0


def _wav_info(path: Path) -> AudioInfo:
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


# --- analysing ----------------------------------------------------------------------


def compute_loudness(path: Path, *, settings: AudioSettings) -> Loudness:
    """EBU R 128 integrated loudness, true peak and loudness range of ``path``."""
    return _measure(path, "anull", settings=settings, what=f"measuring loudness of {path}")


def _measure(path: Path, chain: str, *, settings: AudioSettings, what: str) -> Loudness:
    graph = f"{chain},ebur128=peak=true:framelog=verbose"
    proc = _run(
        _ffmpeg(settings, "-i", str(path), "-map", "0:a:0", "-af", graph, "-f", "null", "-"),
        settings=settings,
        what=what,
    )
    loudness = parse_ebur128(proc.stderr) if proc.returncode == 0 else None
    if loudness is None:
        raise RenderError(f"{what}: ffmpeg failed ({_tail(proc.stderr)})")
    return loudness


def parse_silences(stderr: str) -> list[tuple[int, int]]:
    """``silencedetect``'s stretches of silence as (start_ms, end_ms)."""
    starts = [round(float(m.group("t")) * 1000) for m in _SILENCE_START_RE.finditer(stderr)]
    ends = [round(float(m.group("t")) * 1000) for m in _SILENCE_END_RE.finditer(stderr)]
    return [(max(s, 0), e) for s, e in zip(starts, ends, strict=False)]


# --- writing ------------------------------------------------------------------------


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
    info, estimated = _probe_fast(src, settings=settings)
    limit_ms = settings.max_recording_minutes * 60_000
    if info.duration_ms > limit_ms:
        raise RenderError(
            f"{src}: {info.duration_ms / 60_000:.1f} minutes long; recordings may be at most "
            f"{settings.max_recording_minutes} minutes, split or shorten it"
        )
    with _scratch(dst_wav, ".wav") as tmp:
        detect = f",silencedetect=n={SILENCE_THRESHOLD_DB}dB:d=0.3" if trim_silence else ""
        # s16 before measuring: the loudness is that of the samples written (clipped if so)
        chain = f"aresample={settings.sample_rate},aformat=sample_fmts=s16:channel_layouts=mono{detect}"
        proc = _run(
            _ffmpeg(
                settings,
                *["-v", "level+info", "-i", str(src), "-map", "0:a:0", "-vn"],
                *["-af", f"{chain},ebur128=peak=sample:framelog=verbose"],
                *["-c:a", "pcm_s16le", "-fflags", "+bitexact", "-map_metadata", "-1", "-f", "wav"],
                str(tmp),
            ),
            settings=settings,
            what=f"converting {src}",
        )
        problems = _errors(proc.stderr)
        if proc.returncode != 0 or problems:
            detail = "; ".join(dict.fromkeys(problems)) or _tail(proc.stderr)
            raise RenderError(f"{src}: the audio is damaged ({detail[:300]}); export or record it again")
        decoded = replace(_wav_info(tmp), loudness=parse_ebur128(proc.stderr))
        if not estimated and decoded.duration_ms < info.duration_ms * 0.9 - 500:
            raise RenderError(
                f"{src}: cut short: the header promises {info.duration_ms / 1000:.1f} s but only "
                f"{decoded.duration_ms / 1000:.1f} s decode; the upload is probably incomplete"
            )
        if not trim_silence:
            if decoded.duration_ms <= 0:
                raise RenderError(f"{src}: decodes to no audio at all; export or record it again")
            os.replace(tmp, dst_wav)
            return decoded
        start_ms, end_ms = 0, decoded.duration_ms
        for s, e in parse_silences(proc.stderr):
            if s <= 10:
                start_ms = max(start_ms, e - TRIM_PAD_MS)
            if e >= decoded.duration_ms - 10:
                end_ms = min(end_ms, s + TRIM_PAD_MS)
        if end_ms - start_ms <= 2 * TRIM_PAD_MS:
            raise RenderError(f"{src}: contains only silence; check the microphone and record it again")
        return replace(_cut_wav(tmp, dst_wav, start_ms, end_ms), loudness=decoded.loudness)


def _cut_wav(src: Path, dst: Path, start_ms: int, end_ms: int) -> AudioInfo:
    with wave.open(str(src), "rb") as r, _atomic(dst, ".wav") as tmp:
        rate = r.getframerate()
        first, last = start_ms * rate // 1000, min(end_ms * rate // 1000, r.getnframes())
        r.setpos(first)
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(r.getnchannels())
            w.setsampwidth(r.getsampwidth())
            w.setframerate(rate)
            remaining = last - first
            while remaining > 0:
                chunk = min(remaining, rate * 10)
                w.writeframes(r.readframes(chunk))
                remaining -= chunk
    return _wav_info(dst)


def make_silence(dst_wav: Path, ms: int, *, settings: AudioSettings) -> AudioInfo:
    """``ms`` milliseconds of digital silence, mono 16-bit at ``settings.sample_rate``."""
    if ms <= 0:
        raise RenderError(f"{dst_wav}: a pause must be longer than 0 ms (got {ms})")
    rate = settings.sample_rate
    frames = ms * rate // 1000
    with _atomic(dst_wav, ".wav") as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * frames)
    return replace(_wav_info(dst_wav), loudness=SILENCE)


def make_tone(dst_wav: Path, *, settings: AudioSettings, freqs: tuple[int, ...], ms: int) -> AudioInfo:
    """A chime: the frequencies one after another, ``ms`` in all, soft edges, peaks at -12 dBFS."""
    if not freqs or ms < 20 * len(freqs) or any(not 20 <= f <= 20_000 for f in freqs):
        raise RenderError(f"{dst_wav}: a tone needs 20–20000 Hz notes of at least 20 ms (got {freqs}, {ms} ms)")
    note_s = ms / len(freqs) / 1000
    fade = min(0.02, note_s / 4)
    inputs: list[str] = []
    chains: list[str] = []
    for i, freq in enumerate(freqs):
        inputs += [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={freq}:sample_rate={settings.sample_rate}:duration={note_s}",
        ]
        chains.append(f"[{i}:a]afade=t=in:d={fade},afade=t=out:st={note_s - fade * 2}:d={fade * 2}[n{i}]")
    graph = ";".join(chains) + ";" + "".join(f"[n{i}]" for i in range(len(freqs)))
    graph += f"concat=n={len(freqs)}:v=0:a=1,volume=6dB[out]"
    with _atomic(dst_wav, ".wav") as tmp:
        proc = _run(
            _ffmpeg(
                settings,
                *["-v", "error", *inputs, "-filter_complex", graph, "-map", "[out]"],
                *["-ac", "1", "-c:a", "pcm_s16le", "-fflags", "+bitexact", "-f", "wav"],
                str(tmp),
            ),
            settings=settings,
            what=f"making a tone {dst_wav}",
        )
        if proc.returncode != 0:
            raise RenderError(f"{dst_wav}: ffmpeg could not make the tone ({_tail(proc.stderr)})")
    return _wav_info(dst_wav)


#: Every MP3 Loa writes: no metadata from the input, no encoder version, a Xing/LAME
#: header (exact duration, gapless info), tags added afterwards with mutagen.
_MP3_FLAGS = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]
_MP3_FLAGS += ["-id3v2_version", "0", "-write_xing", "1", "-f", "mp3"]


def _limiter(ceiling_db: float) -> str:
    limit = db_to_linear(ceiling_db)
    return f"alimiter=limit={limit:.4f}:level=disabled:attack=5:release=50:latency=1"


def _chain(settings: AudioSettings, gain_db: float, ceiling_db: float) -> str:
    mono = f"aresample={settings.sample_rate},aformat=channel_layouts=mono"
    return f"{mono},volume={gain_db:.2f}dB,{_limiter(ceiling_db)}"


def master_mp3(
    src_wav: Path,
    dst_mp3: Path,
    *,
    settings: AudioSettings,
    tags: Id3Tags,
    source_loudness: Loudness | None = None,
) -> MasterResult:
    """Loudness-normalise ``src_wav`` (any format ffmpeg reads) into a tagged CBR MP3.

    A gain in front of a lookahead limiter (ceiling ``PEAK_HEADROOM_DB`` under
    ``true_peak_db``; ffmpeg's loudnorm alone falls into its dynamic mode on TTS speech)
    is predicted from the source's loudness and true peak (``predict_gain``). One ffmpeg
    run encodes and, through ``asplit``, measures the very signal fed to the encoder
    (``ebur128=peak=true``); only when that misses the target by more than
    ``LOUDNESS_TOLERANCE_LU`` or the peak rises too close to the limit is it encoded again
    with a corrected gain (at most ``MAX_ENCODES`` runs). ``MasterResult.loudness`` is that
    measurement of the pre-encoder signal; the MP3 itself measures about 0.4 LU quieter on
    speech (``ENCODER_LOSS_LU`` aims that much above) and up to ~0.5 dB higher in true peak
    (the ceiling's headroom), as the tests check on the output.

    ``source_loudness`` (``ingest_audio``'s measurement) spares a measuring run; the
    duration comes from the MP3's Xing header, as ffprobe reads it. Silence is encoded
    as it is. The same input gives the same bytes.
    """
    source = source_loudness or compute_loudness(src_wav, settings=settings)
    aim = settings.target_lufs + ENCODER_LOSS_LU
    ceiling = settings.true_peak_db - PEAK_HEADROOM_DB
    gain = 0.0 if source.silent else min(predict_gain(source, aim, ceiling), _MAX_GAIN_DB)
    tried: list[tuple[float, float]] = []
    with _atomic(dst_mp3, ".mp3") as tmp:
        for encodes in range(1, MAX_ENCODES + 1):
            out = _encode(src_wav, tmp, settings=settings, chain=_chain(settings, gain, ceiling))
            if source.silent or out.silent:
                break
            off = aim - out.integrated_lufs
            over = out.true_peak_db - (ceiling + PEAK_HEADROOM_DB / 2)
            if (abs(off) <= LOUDNESS_TOLERANCE_LU and over <= 0) or encodes == MAX_ENCODES:
                break
            tried.append((gain, out.integrated_lufs))
            if over > 0:
                ceiling -= over + 0.2
            gain = min(gain + off / _slope(tried, source, gain, ceiling), _MAX_GAIN_DB)
            log.debug("%s: %+.2f dB gave %s; trying %+.2f dB", src_wav, tried[-1][0], out, gain)
        if not source.silent and (
            abs(aim - out.integrated_lufs) > 1.0 or out.true_peak_db > settings.true_peak_db - 0.5
        ):
            log.warning(
                "%s: %.1f LUFS, %.1f dBTP after mastering (target %.1f LUFS, peak %.1f dBTP)",
                src_wav,
                out.integrated_lufs,
                out.true_peak_db,
                settings.target_lufs,
                settings.true_peak_db,
            )
        duration_ms = _mp3_duration_ms(tmp)
        if duration_ms is None:
            duration_ms = probe_audio(tmp, settings=settings).duration_ms
        _write_tags(tmp, tags)
        digest, size = _sha256(tmp)
    return MasterResult(dst_mp3, duration_ms, out, size, digest, round(gain, 2), encodes)


def _slope(tried: list[tuple[float, float]], source: Loudness, gain: float, ceiling: float) -> float:
    """LU per dB: between the last two tries if there are two, else from the model."""
    if len(tried) >= 2:
        (g0, l0), (g1, l1) = tried[-2], tried[-1]
        if abs(g1 - g0) > 0.05:
            return min(max((l1 - l0) / (g1 - g0), 0.15), 1.0)
    return gain_slope(source, gain, ceiling)


def _encode(src: Path, tmp: Path, *, settings: AudioSettings, chain: str) -> Loudness:
    """Encode ``src`` through ``chain``; the loudness of what went into the encoder."""
    graph = f"[0:a]{chain},asplit[enc][m];[m]ebur128=peak=true:framelog=verbose,anullsink"
    proc = _run(
        _ffmpeg(
            settings,
            *["-i", str(src), "-filter_complex", graph, "-map", "[enc]"],
            *f"-ac 1 -ar {settings.sample_rate} -c:a libmp3lame -b:a {settings.bitrate_kbps}k".split(),
            *_MP3_FLAGS,
            *["-y", str(tmp)],
        ),
        settings=settings,
        what=f"encoding {src}",
    )
    loudness = parse_ebur128(proc.stderr) if proc.returncode == 0 else None
    if loudness is None:
        raise RenderError(f"{src}: the MP3 encoder failed ({_tail(proc.stderr)})")
    return loudness


#: MPEG audio version bits → (samples per frame, side-info bytes mono, stereo).
_MPEG_LAYOUT = {3: (1152, 17, 32), 2: (576, 9, 17), 0: (576, 9, 17)}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_duration_ms(path: Path) -> int | None:
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


def _write_tags(path: Path, tags: Id3Tags) -> None:
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


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest(), path.stat().st_size


def concat_mp3(
    parts: Sequence[Path], dst_mp3: Path, *, settings: AudioSettings, tags: Id3Tags | None = None
) -> AudioInfo:
    """Join MP3 segments of the same format into one file without re-encoding."""
    if not parts:
        raise RenderError(f"{dst_mp3}: nothing to join (no parts)")
    infos = [probe_audio(p, settings=settings) for p in parts]
    first = infos[0]
    for part, info in zip(parts, infos, strict=True):
        if (info.codec, info.sample_rate, info.channels) != ("mp3", first.sample_rate, first.channels):
            raise RenderError(
                f"{part}: {info.codec} {info.sample_rate} Hz {info.channels} ch cannot be joined to "
                f"mp3 {first.sample_rate} Hz {first.channels} ch; master every part with master_mp3"
            )
    with _atomic(dst_mp3, ".mp3") as tmp:
        listing = tmp.with_suffix(".txt")
        lines = ["file '" + str(p.resolve()).replace("'", "'\\''") + "'" for p in parts]
        listing.write_text("ffconcat version 1.0\n" + "\n".join(lines) + "\n", encoding="utf-8")
        try:
            proc = _run(
                _ffmpeg(
                    settings,
                    *["-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing)],
                    *["-map", "0:a", "-c", "copy", *_MP3_FLAGS, "-y", str(tmp)],
                ),
                settings=settings,
                what=f"joining {len(parts)} parts into {dst_mp3}",
            )
        finally:
            listing.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise RenderError(f"{dst_mp3}: joining {len(parts)} parts failed ({_tail(proc.stderr)})")
        if tags is not None:
            _write_tags(tmp, tags)
        info = probe_audio(tmp, settings=settings)
    return info


# --- checking a reading, and audio for a speech recogniser -----------------------------

#: A reading whose speech averages below this is too quiet to have been recorded well.
QUIET_MEAN_DB = -38.0
#: Share of samples at full scale above which a reading is clipped.
CLIPPED_SHARE = 0.001
#: Share of the duration that is silence above which a reading is mostly silence.
SILENT_SHARE = 0.6
#: What counts as silence when checking a reading (quieter than a far, soft voice).
LEVEL_SILENCE_DB = -45
_MEAN_VOLUME_RE = re.compile(r"mean_volume: (?P<v>-?[\d.]+|-inf) dB")
_MAX_VOLUME_RE = re.compile(r"max_volume: (?P<v>-?[\d.]+|-inf) dB")
_N_SAMPLES_RE = re.compile(r"n_samples: (?P<n>\d+)")
_HIST_0DB_RE = re.compile(r"histogram_0db: (?P<n>\d+)")


@dataclass(frozen=True, slots=True)
class Levels:
    """How a recording sounds as a whole: the basis for warnings at upload."""

    duration_ms: int
    mean_db: float  # mean volume (RMS), dBFS
    peak_db: float  # sample peak, dBFS
    clipped_share: float  # share of samples at full scale
    silent_share: float  # share of the duration quieter than LEVEL_SILENCE_DB

    @property
    def too_quiet(self) -> bool:
        return self.mean_db < QUIET_MEAN_DB

    @property
    def clipped(self) -> bool:
        return self.peak_db >= -0.1 and self.clipped_share > CLIPPED_SHARE

    @property
    def mostly_silent(self) -> bool:
        return self.silent_share > SILENT_SHARE


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
    proc = _run(
        _ffmpeg(settings, "-v", "level+info", "-i", str(path), "-map", "0:a:0", "-af", chain, "-f", "null", "-"),
        settings=settings,
        what=f"checking the levels of {path}",
    )
    if proc.returncode != 0:
        raise RenderError(f"{path}: cannot measure the levels ({_tail(proc.stderr)})")
    return parse_levels(proc.stderr, info.duration_ms)


def decode_pcm_wav(src: Path, dst_wav: Path, *, settings: AudioSettings, sample_rate: int = 16000) -> AudioInfo:
    """Any audio → mono 16-bit PCM WAV at ``sample_rate``, untrimmed (e.g. for a speech recogniser)."""
    with _atomic(dst_wav, ".wav") as tmp:
        proc = _run(
            _ffmpeg(
                settings,
                *["-v", "error", "-i", str(src), "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sample_rate)],
                *["-c:a", "pcm_s16le", "-map_metadata", "-1", "-f", "wav", str(tmp)],
            ),
            settings=settings,
            what=f"decoding {src}",
        )
        if proc.returncode != 0:
            raise RenderError(f"{src}: cannot decode ({_tail(proc.stderr)})")
        info = _wav_info(tmp)
    return info


# --- for the benchmark: synthetic recordings and the encode-once limit ---------------


def mix_over_tone(speech: Path, dst: Path, seconds: float, *, settings: AudioSettings) -> None:
    """``speech`` looped over a soft 220 Hz tone, ``seconds`` long, mono AAC in ``dst`` (.m4a).

    It stands in for a Mông, Dao or Giáy reading recorded on a phone (benchmark workloads).
    """
    graph = "[1:a]volume=0.08[t];[0:a]aresample=22050[s];[s][t]amix=inputs=2:duration=shortest:normalize=0"
    args = _ffmpeg(
        settings,
        *("-v", "error", "-y", "-stream_loop", "-1", "-i", str(speech)),
        *("-f", "lavfi", "-i", "sine=frequency=220:sample_rate=22050", "-filter_complex", graph),
        *("-t", f"{seconds:.2f}", "-ac", "1", "-c:a", "aac", "-b:a", "64k", str(dst)),
    )
    done = _run(args, settings=settings, what=f"recording {dst.name}")
    if done.returncode != 0:
        raise RenderError(f"recording {dst.name}: ffmpeg exited with {done.returncode}: {_tail(done.stderr)}")


def encode_concat(sources: Sequence[Path], dst: Path, *, settings: AudioSettings, chunk: int = 100) -> int:
    """Decode every source once and encode it once to MP3 (one ffmpeg run per ``chunk`` sources).

    The least any pipeline has to do with a day's unique audio: read it and encode it once,
    with no loudness analysis and no process per segment (the benchmark's limit). Returns
    the bytes of MP3 written (``dst`` gets a numbered suffix per chunk).
    """
    written = 0
    long_enough = settings.model_copy(update={"timeout_s": max(settings.timeout_s, 3600.0)})
    for start in range(0, len(sources), chunk):
        part = sources[start : start + chunk]
        out = dst.with_name(f"{dst.stem}-{start // chunk}{dst.suffix}")
        inputs: list[str] = []
        labels: list[str] = []
        for i, src in enumerate(part):
            inputs += ["-i", str(src)]
            labels.append(f"[{i}:a]aresample={settings.sample_rate},aformat=sample_fmts=s16:channel_layouts=mono[a{i}]")
        graph = ";".join(labels) + ";" + "".join(f"[a{i}]" for i in range(len(part)))
        graph += f"concat=n={len(part)}:v=0:a=1[out]"
        args = _ffmpeg(
            settings,
            *("-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]"),
            *("-c:a", "libmp3lame", "-b:a", f"{settings.bitrate_kbps}k", str(out)),
        )
        what = f"encode-once limit ({len(part)} sources into {out})"
        done = _run(args, settings=long_enough, what=what)
        if done.returncode != 0:
            raise RenderError(f"{what}: ffmpeg exited with {done.returncode}: {_tail(done.stderr)}")
        written += out.stat().st_size
    return written


def ffmpeg_version(settings: AudioSettings) -> str:
    """The ffmpeg version string (e.g. "5.1.6-0+deb12u1"), or "unknown"."""
    try:
        done = _run([settings.ffmpeg, "-version"], settings=settings, what="ffmpeg -version")
    except RenderError:
        return "unknown"
    first = done.stdout.split("\n", 1)[0]
    return first.replace("ffmpeg version ", "").split(" ")[0] or "unknown"
