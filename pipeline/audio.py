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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from mutagen.id3 import COMM, ID3, TALB, TIT2, TLAN, TPE1

from pipeline.config import AudioSettings
from pipeline.errors import RecordingRefused, RenderError
from pipeline.loudness import (
    SILENCE_LUFS,
    Loudness,
    db_to_linear,
    gain_slope,
    measure_pcm,
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
    "convert_upload",
    "ingest_audio",
    "make_silence",
    "make_tone",
    "master_mp3",
    "pcm_loudness",
    "probe_audio",
    "probe_upload",
]

log = logging.getLogger(__name__)

#: Silence below this level at either end of a recording is trimmed.
SILENCE_THRESHOLD_DB = -50
#: Silence kept at each end after trimming, so speech does not start abruptly.
TRIM_PAD_MS = 200
#: Only silence at least this long (s) at an end is trimmed.
SILENCE_MIN_S = 0.3
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


def _packets_duration(path: Path, *, settings: AudioSettings, demuxers: tuple[str, ...] = ()) -> float:
    """The end of the last audio packet, in seconds, for containers that do not state a duration
    (a browser's WebM). Read with the ``file`` protocol only, and ``demuxers`` only when given."""
    only = ["-format_whitelist", ",".join(demuxers)] if demuxers else []
    proc = _run(
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


def pcm_loudness(path: Path, *, settings: AudioSettings) -> Loudness:
    """The loudness of ``path`` as mastering measures it: decoded in this process to mono at
    ``settings.sample_rate``, then ``measure_pcm`` (true peak included); no process started.

    ``compute_loudness`` is ffmpeg's own ebur128 on the file as it is (stereo counted as two
    channels), the reference the tests hold this to.
    """
    pcm = _decode_pcm(path, settings=settings, what=f"measuring loudness of {path}")
    return measure_pcm(pcm, settings.sample_rate, true_peak=True, scale=1 / 32768)


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
    pcm = _decode_pcm(src, settings=settings, what=f"converting {src}")
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
        first, last = _trim_points(pcm, settings.sample_rate)
        if last - first <= 2 * TRIM_PAD_MS * settings.sample_rate // 1000:
            raise RenderError(f"{src}: contains only silence; check the microphone and record it again")
    _write_wav(dst_wav, pcm[first:last], settings.sample_rate)
    return replace(_wav_info(dst_wav), loudness=loudness)


def _trim_points(pcm: Any, rate: int) -> tuple[int, int]:
    """First and last sample to keep: silence (under ``SILENCE_THRESHOLD_DB``, at least
    ``SILENCE_MIN_S`` long) cut from either end, ``TRIM_PAD_MS`` of it kept."""
    import numpy as np

    threshold = 10 ** (SILENCE_THRESHOLD_DB / 20) * 32767
    first_loud = last_loud = -1
    for start in range(0, pcm.size, _CHUNK):  # a second at a time: no copy of a long recording
        hits = np.flatnonzero(np.abs(pcm[start : start + _CHUNK].astype(np.int32)) >= threshold)
        if hits.size:
            first_loud = start + int(hits[0])
            break
    if first_loud < 0:
        return 0, 0
    for end in range(pcm.size, 0, -_CHUNK):
        hits = np.flatnonzero(np.abs(pcm[max(end - _CHUNK, 0) : end].astype(np.int32)) >= threshold)
        if hits.size:
            last_loud = max(end - _CHUNK, 0) + int(hits[-1])
            break
    pad = TRIM_PAD_MS * rate // 1000
    first, last = 0, pcm.size
    if first_loud >= SILENCE_MIN_S * rate:
        first = first_loud - pad
    if pcm.size - 1 - last_loud >= SILENCE_MIN_S * rate:
        last = last_loud + 1 + pad
    return first, last


def _write_wav(dst: Path, pcm: Any, rate: int) -> None:
    import numpy as np

    with _atomic(dst, ".wav") as tmp, wave.open(str(tmp), "wb") as w:
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
    pcm = _decode_pcm(src_wav, settings=settings, what=what)
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
    with _atomic(dst_mp3, ".mp3") as tmp:
        _encode_mp3(signal, tmp, settings=settings, what=what)
        duration_ms = _mp3_duration_ms(tmp)
        if duration_ms is None:
            duration_ms = probe_audio(tmp, settings=settings).duration_ms
        _write_tags(tmp, tags)
        digest, size = _sha256(tmp)
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
    import av
    import numpy as np

    chain = [
        ("volume", f"{gain_db:.2f}dB"),
        ("alimiter", _limiter(ceiling_db)),
        ("aformat", "sample_fmts=fltp:channel_layouts=mono"),
    ]
    try:
        return _gather(_filtered(_frames(pcm, rate), rate, "s16", chain), np.float32, pcm.size)
    except (av.FFmpegError, ValueError) as exc:
        raise RenderError(f"{what}: the limiter failed ({exc})") from exc


def _gather(frames: Iterable[Any], dtype: Any, expected: int) -> Any:
    """The samples of mono ``frames`` in one array, filled in place (no list of parts and
    second copy: a three-minute bulletin is mastered in half the memory). ``expected`` is
    the likely count; the array grows when there are more."""
    import numpy as np

    out = np.empty(max(expected, 1), dtype=dtype)
    n = 0
    for frame in frames:
        samples = _samples(frame, np.dtype(dtype).str)
        if n + samples.size > out.size:
            grown = np.empty(max(out.size * 2, n + samples.size), dtype=dtype)
            grown[:n] = out[:n]
            out = grown
        out[n : n + samples.size] = samples
        n += samples.size
    return out[:n].copy() if n < out.size // 2 else out[:n]


def _encode_mp3(signal: Any, tmp: Path, *, settings: AudioSettings, what: str) -> None:
    """Mono float samples → CBR MP3 by libmp3lame: Xing/LAME header, no ID3, bit-exact flags."""
    import av
    import av.logging

    rate = settings.sample_rate
    # libmp3lame's flush warns "Trying to remove 1152 samples, but the queue is empty" (as
    # under the ffmpeg binary): captured here, in this thread, rather than logged
    try:
        with (
            av.logging.Capture(),
            av.open(str(tmp), "w", format="mp3", options={"id3v2_version": "0", "write_xing": "1"}) as out,
        ):
            out.flags |= _AV_FORMAT_BITEXACT
            stream: Any = out.add_stream("libmp3lame", rate=rate)
            stream.codec_context.layout = "mono"
            stream.codec_context.format = "fltp"
            stream.bit_rate = settings.bitrate_kbps * 1000
            stream.codec_context.flags |= _AV_CODEC_BITEXACT
            for start in range(0, signal.size, _CHUNK):
                frame = av.AudioFrame.from_ndarray(
                    signal[start : start + _CHUNK].reshape(1, -1), format="fltp", layout="mono"
                )
                frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
                out.mux(stream.encode(frame))  # PyAV cuts the frames to the encoder's 1152
            out.mux(stream.encode(None))
    except (av.FFmpegError, ValueError) as exc:
        raise RenderError(f"{what}: the MP3 encoder failed ({exc})") from exc


# --- FFmpeg's libraries in this process (PyAV) -------------------------------------------

_AV_FORMAT_BITEXACT = 0x0400  # AVFMT_FLAG_BITEXACT
_AV_CODEC_BITEXACT = 1 << 23  # AV_CODEC_FLAG_BITEXACT
#: Decoding errors at this level or worse make a file "damaged" (AV_LOG_ERROR).
_AV_LOG_ERROR = 16


#: Samples per frame handed to the filters (one second at 44.1 kHz): few Python round
#: trips, and no whole bulletin in one buffer.
_CHUNK = 44100


def _frames(pcm: Any, rate: int) -> Iterator[Any]:
    """Mono s16 samples as PyAV frames of ``_CHUNK`` samples, timestamps from 0."""
    import av

    for start in range(0, pcm.size, _CHUNK):
        frame = av.AudioFrame.from_ndarray(pcm[start : start + _CHUNK].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        yield frame


def _samples(frame: Any, dtype: str) -> Any:
    """The samples of a mono (or planar) frame's first plane as numpy, without copying."""
    import numpy as np

    return np.frombuffer(frame.planes[0], dtype=dtype, count=frame.samples)


def _filtered(
    frames: Iterable[Any], rate: int, fmt: str, chain: Sequence[tuple[str, str]], layout: str = "mono"
) -> Iterator[Any]:
    """``frames`` (all of one rate, sample format and layout) through a chain of FFmpeg filters."""
    import av
    import av.filter

    graph = av.filter.Graph()
    node = graph.add_abuffer(sample_rate=rate, format=fmt, layout=layout, time_base=Fraction(1, rate))
    for name, args in chain:
        nxt = graph.add(name, args)
        node.link_to(nxt)
        node = nxt
    sink = graph.add("abuffersink")
    node.link_to(sink)
    graph.configure()
    for frame in [*frames, None]:
        graph.push(frame)
        while True:
            try:
                yield graph.pull()
            except (av.BlockingIOError, av.EOFError):
                break


def _decode_pcm(src: Path, *, settings: AudioSettings, what: str) -> Any:
    """Decode the first audio stream of ``src`` to mono 16-bit samples at ``settings.sample_rate``.

    ``aresample`` and ``aformat`` as the ffmpeg command line would use them; timestamps
    start at 0. Any decoding error (or error logged by the decoder) is a ``RenderError``
    saying the file is damaged.
    """
    import av
    import av.logging
    import numpy as np

    rate = settings.sample_rate
    ready = _working_wav(src, rate)
    if ready is not None:
        return ready
    chain = [("aresample", str(rate)), ("aformat", "sample_fmts=s16:channel_layouts=mono")]
    problems: list[str] = []
    pcm = np.zeros(0, dtype=np.int16)
    with av.logging.Capture() as logs:
        try:
            container = av.open(str(src))
        except av.FFmpegError as exc:
            raise RenderError(
                f"{src}: not a readable audio file ({exc.strerror}); export it as MP3, WAV, M4A or OGG and try again"
            ) from exc
        with container:
            if not container.streams.audio:
                raise RenderError(f"{src}: has no audio stream; give a sound recording")
            stream = container.streams.audio[0]

            def frames() -> Iterator[Any]:
                at = 0
                for packet in container.demux(stream):
                    try:
                        decoded = packet.decode()
                    except av.FFmpegError as exc:
                        problems.append(str(exc.strerror or exc))
                        continue
                    for frame in decoded:
                        frame.pts = at
                        at += frame.samples
                        yield frame

            decoded = frames()
            first = next(decoded, None)
            if first is not None:
                layout = first.layout.name
                if layout.endswith(" channels"):  # no layout in the file: FFmpeg's default for the count
                    layout = {1: "mono", 2: "stereo"}.get(len(first.layout.channels), layout)
                seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
                pcm = _gather(
                    _filtered(_chain_first(first, decoded), first.sample_rate, first.format.name, chain, layout),
                    np.int16,
                    int(seconds * rate) + rate,
                )
    problems += [msg.strip() for level, _, msg in logs if level <= _AV_LOG_ERROR and msg.strip()]
    if problems:
        detail = "; ".join(dict.fromkeys(problems))
        raise RenderError(f"{src}: the audio is damaged ({detail[:300]}); export or record it again")
    return pcm


def _working_wav(path: Path, rate: int) -> Any:
    """The samples of a mono 16-bit PCM WAV at ``rate`` (what ``ingest_audio`` writes), else None."""
    import numpy as np

    try:
        with wave.open(str(path), "rb") as w:
            if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, rate):
                return None
            data = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error):
        return None
    return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")


def _chain_first(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


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


# --- uploads: audio and nothing else ---------------------------------------------------

#: The demuxers an uploaded recording may be opened with (``-format_whitelist``): no
#: playlists (hls), no concat lists, no image or subtitle readers, nothing that opens a
#: second file or a network stream.
UPLOAD_DEMUXERS = ("wav", "mp3", "mov", "mp4", "m4a", "3gp", "ogg", "flac", "matroska", "webm", "amr", "aac")
#: The audio codecs accepted in an upload.
UPLOAD_CODECS = frozenset(
    {
        *("pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_u8", "pcm_alaw", "pcm_mulaw"),
        *("mp3", "aac", "opus", "vorbis", "flac", "amr_nb", "amr_wb"),
    }
)
_MOV = frozenset({"mov,mp4,m4a,3gp,3g2,mj2"})
_MKV = frozenset({"matroska,webm"})
#: A file's extension → the container names (ffprobe's ``format_name``) it may hold.
UPLOAD_EXTENSIONS: dict[str, frozenset[str]] = {
    ".wav": frozenset({"wav"}),
    ".mp3": frozenset({"mp3"}),
    ".m4a": _MOV,
    ".mp4": _MOV,
    ".aac": _MOV | {"aac"},
    ".3gp": _MOV,
    ".3ga": _MOV,
    ".ogg": frozenset({"ogg"}),
    ".oga": frozenset({"ogg"}),
    ".opus": frozenset({"ogg"}),
    ".flac": frozenset({"flac"}),
    ".webm": _MKV,
    ".weba": _MKV,
    ".amr": frozenset({"amr"}),
}
#: A tag or header naming another file for ffmpeg to open (``file:/etc/…``, ``concat:a|b``).
_REFERENCE_RE = re.compile(r"\b(?:file|concat|subfile|pipe|crypto|hls):", re.I)
_RAW_REFERENCE_RE = re.compile(rb"(?i)\b(?:file|concat|subfile|pipe):[/\w.]")
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"<svg", b"<?xml")


def _refuse(path: Path, message: str, reason: str, **params: object) -> RecordingRefused:
    return RecordingRefused(f"{path.name}: {message}", reason=reason, **params)


def _sniff(path: Path, head: bytes) -> None:
    """Refuse text playlists, concat lists, images and embedded references from the first bytes."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"#EXTM3U") or b"#EXT-X-" in head or b"#EXTINF" in head:
        raise _refuse(path, "is an HLS playlist, not a recording; upload the audio file itself", "playlist")
    if text.startswith(b"ffconcat") or re.match(rb"(?i)file\s+['\"/]", text):
        raise _refuse(path, "is an ffmpeg concat list, not a recording; upload the audio file itself", "concat")
    if text.startswith((b"[playlist]", b"<?wpl", b"<asx", b"<smil")) or text[:5].lower() == b"<?xml":
        raise _refuse(path, "is a playlist or a text document, not a recording", "playlist")
    if text.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        raise _refuse(path, "is an image, not a recording; upload the audio file", "image")
    if _RAW_REFERENCE_RE.search(head):
        raise _refuse(path, "names another file or a URL inside it; export the recording again", "reference")


def probe_upload(path: Path, *, settings: AudioSettings) -> AudioInfo:
    """Check that an uploaded ``path`` is one audio recording Loa accepts, and what it holds.

    ffprobe reads it with the ``file`` protocol only and the demuxers of
    ``UPLOAD_DEMUXERS`` only; the extension must match the container, the first audio
    stream's codec must be in ``UPLOAD_CODECS``, no video (a cover picture is allowed),
    no tag may name a file or a URL, and the duration must be within
    ``max_recording_minutes``. Every refusal is a ``RecordingRefused`` with a reason.
    """
    if not path.is_file():
        raise _refuse(path, "no such file", "missing")
    size = path.stat().st_size
    if size == 0:
        raise _refuse(path, "the file is empty (0 bytes); upload the recording again", "empty")
    with path.open("rb") as f:
        head = f.read(64 * 1024)
    _sniff(path, head)
    suffix = path.suffix.lower()
    allowed = UPLOAD_EXTENSIONS.get(suffix)
    if allowed is None:
        raise _refuse(
            path,
            f"{suffix or 'no extension'} is not an audio type Loa accepts; "
            f"use one of {', '.join(sorted(UPLOAD_EXTENSIONS))}",
            "extension",
            suffix=suffix,
        )
    proc = _run(
        [
            settings.ffprobe,
            *["-v", "error", "-protocol_whitelist", "file", "-format_whitelist", ",".join(UPLOAD_DEMUXERS)],
            *["-print_format", "json", "-show_format", "-show_streams"],
            f"file:{path.resolve()}",
        ],
        settings=settings,
        what=f"reading {path}",
    )
    if proc.returncode != 0:
        raise _refuse(path, f"not audio that Loa accepts ({_tail(proc.stderr, 1)})", "not_audio")
    data: dict[str, Any] = json.loads(proc.stdout or "{}")
    fmt: dict[str, Any] = data.get("format", {})
    streams: list[dict[str, Any]] = data.get("streams", [])
    format_name = str(fmt.get("format_name", ""))
    if format_name not in allowed:
        raise _refuse(
            path,
            f"the name ends in {suffix} but the file is {format_name}; rename it or export it again",
            "extension",
            suffix=suffix,
            found=format_name,
        )
    for s in streams:
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic"):
            raise _refuse(path, "contains video; upload the sound only", "video")
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if audio is None:
        raise _refuse(path, "has no audio stream", "no_audio")
    codec = str(audio.get("codec_name", ""))
    if codec not in UPLOAD_CODECS:
        raise _refuse(path, f"audio codec {codec} is not accepted; export it as MP3, WAV or M4A", "codec", codec=codec)
    tags = [str(v) for t in [fmt.get("tags") or {}, *[s.get("tags") or {} for s in streams]] for v in t.values()]
    if any(_REFERENCE_RE.search(v) for v in tags):
        raise _refuse(path, "its metadata names a file or a URL; export the recording again", "reference")
    duration = _float(audio.get("duration")) or _float(fmt.get("duration"))
    if duration <= 0:  # a browser's WebM states none: measure it from the packets
        duration = _packets_duration(path, settings=settings, demuxers=UPLOAD_DEMUXERS)
    if duration <= 0:
        raise _refuse(path, "contains no audio (duration 0 s)", "no_duration")
    limit_ms = settings.max_recording_minutes * 60_000
    if duration * 1000 > limit_ms:
        raise _refuse(
            path,
            f"{duration / 60:.1f} minutes is longer than {settings.max_recording_minutes}; "
            "cut it or split the bulletin",
            "too_long",
            minutes=round(duration / 60, 1),
            limit=settings.max_recording_minutes,
        )
    return AudioInfo(
        duration_ms=round(duration * 1000),
        codec=codec,
        sample_rate=int(_float(audio.get("sample_rate"))),
        channels=int(audio.get("channels", 0)),
        format_name=format_name,
        bit_rate=int(_float(audio.get("bit_rate")) or _float(fmt.get("bit_rate"))),
    )


def convert_upload(src: Path, dst_wav: Path, *, info: AudioInfo, settings: AudioSettings) -> AudioInfo:
    """A checked upload (``probe_upload``'s ``info``) → the internal WAV: mono 16-bit, no metadata.

    ffmpeg reads it under the same restrictions as the probe, with the container forced
    to the one the probe found; what is stored (and later rendered) is this WAV only.
    """
    demuxer = info.format_name.split(",")[0]
    with _atomic(dst_wav, ".wav") as tmp:
        proc = _run(
            _ffmpeg(
                settings,
                *["-v", "error", "-protocol_whitelist", "file", "-format_whitelist", ",".join(UPLOAD_DEMUXERS)],
                *["-f", demuxer, "-i", f"file:{src.resolve()}", "-map", "0:a:0", "-vn", "-sn", "-dn"],
                *["-ac", "1", "-ar", str(settings.sample_rate), "-c:a", "pcm_s16le"],
                *["-fflags", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1", "-f", "wav"],
                str(tmp),
            ),
            settings=settings,
            what=f"converting {src}",
        )
        problems = _errors(proc.stderr)
        if proc.returncode != 0 or problems:
            detail = "; ".join(dict.fromkeys(problems)) or _tail(proc.stderr)
            raise _refuse(src, f"the audio is damaged ({detail[:200]}); export or record it again", "damaged")
        decoded = _wav_info(tmp)
        if decoded.duration_ms <= 0:
            raise _refuse(src, "decodes to no audio at all", "no_duration")
        if demuxer != "mp3" and decoded.duration_ms < info.duration_ms * 0.9 - 500:
            raise _refuse(
                src,
                f"cut short: the header promises {info.duration_ms / 1000:.1f} s but only "
                f"{decoded.duration_ms / 1000:.1f} s decode; the upload is probably incomplete",
                "truncated",
            )
    return _wav_info(dst_wav)


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
