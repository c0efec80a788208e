"""The upload gate: which uploaded files Loa accepts as a recording, and their conversion.

The policy lives here (containers, codecs, extensions, what a file may not contain or name);
ffprobe and ffmpeg run in the adapter (``pipeline.audio.ffmpeg``, ``pipeline.audio.ffmpeg_write``)
with the ``file`` protocol and ``UPLOAD_DEMUXERS`` only. Every refusal is a ``RecordingRefused``
with a reason.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.audio.ffmpeg import probe_packets_duration, probe_restricted, to_float
from pipeline.audio.ffmpeg_write import decode_restricted
from pipeline.audio.files import atomic, wav_info
from pipeline.audio.types import AudioInfo
from pipeline.config import AudioSettings
from pipeline.errors import RecordingRefused
from pipeline.files import sha256_file

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
    data, detail = probe_restricted(path, settings=settings, demuxers=UPLOAD_DEMUXERS)
    if data is None:
        raise _refuse(path, f"not audio that Loa accepts ({detail})", "not_audio")
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
    duration = to_float(audio.get("duration")) or to_float(fmt.get("duration"))
    if duration <= 0:  # a browser's WebM states none: measure it from the packets
        duration = probe_packets_duration(path, settings=settings, demuxers=UPLOAD_DEMUXERS)
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
        sample_rate=int(to_float(audio.get("sample_rate"))),
        channels=int(audio.get("channels", 0)),
        format_name=format_name,
        bit_rate=int(to_float(audio.get("bit_rate")) or to_float(fmt.get("bit_rate"))),
    )


def convert_upload(src: Path, dst_wav: Path, *, info: AudioInfo, settings: AudioSettings) -> AudioInfo:
    """A checked upload (``probe_upload``'s ``info``) → the internal WAV: mono 16-bit, no metadata.

    ffmpeg reads it under the same restrictions as the probe, with the container forced
    to the one the probe found; what is stored (and later rendered) is this WAV only.
    """
    demuxer = info.format_name.split(",")[0]
    with atomic(dst_wav, ".wav") as tmp:
        detail = decode_restricted(src, tmp, demuxer=demuxer, demuxers=UPLOAD_DEMUXERS, settings=settings)
        if detail is not None:
            raise _refuse(src, f"the audio is damaged ({detail[:200]}); export or record it again", "damaged")
        decoded = wav_info(tmp)
        if decoded.duration_ms <= 0:
            raise _refuse(src, "decodes to no audio at all", "no_duration")
        if demuxer != "mp3" and decoded.duration_ms < info.duration_ms * 0.9 - 500:
            raise _refuse(
                src,
                f"cut short: the header promises {info.duration_ms / 1000:.1f} s but only "
                f"{decoded.duration_ms / 1000:.1f} s decode; the upload is probably incomplete",
                "truncated",
            )
    return wav_info(dst_wav)


@dataclass(frozen=True, slots=True)
class KeptUpload:
    path: Path  # <dest_dir>/<stem>-<first 16 hex of its SHA-256>.wav
    sha256: str
    source: AudioInfo  # what the upload held (``probe_upload``)
    wav: AudioInfo  # the internal WAV


def keep_upload(src: Path, dest_dir: Path, stem: str, *, settings: AudioSettings) -> KeptUpload:
    """``probe_upload`` and ``convert_upload`` into ``dest_dir``, named by content.

    The WAV is written under a temporary name and renamed once whole, so a crash leaves no
    half file under a real name. Refusals are ``RecordingRefused``; ffmpeg's own failures
    ``RenderError``.
    """
    info = probe_upload(src, settings=settings)
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest_dir / f".incoming-{uuid.uuid4().hex}.wav"
    try:
        wav = convert_upload(src, tmp, info=info, settings=settings)
        digest = sha256_file(tmp)
        dest = dest_dir / f"{stem}-{digest[:16]}.wav"
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return KeptUpload(dest, digest, info, wav)
