"""The ffmpeg adapter, writing: tones, joined MP3s, restricted and plain decodes to WAV, and
the benchmark's synthetic recordings and encode-once limit, each one ffmpeg run.

Every writer writes a temporary name in the destination directory and renames it into
place (``pipeline.audio.files.atomic``); every failure is a ``RenderError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.audio.ffmpeg import error_lines, ffmpeg_args, probe_audio, run, tail
from pipeline.audio.files import atomic, wav_info, write_tags
from pipeline.audio.types import AudioInfo, Id3Tags
from pipeline.config import AudioSettings
from pipeline.errors import RenderError

#: Every MP3 Loa writes: no metadata from the input, no encoder version, a Xing/LAME
#: header (exact duration, gapless info), tags added afterwards with mutagen.
_MP3_FLAGS = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]
_MP3_FLAGS += ["-id3v2_version", "0", "-write_xing", "1", "-f", "mp3"]


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
    with atomic(dst_wav, ".wav") as tmp:
        proc = run(
            ffmpeg_args(
                settings,
                *["-v", "error", *inputs, "-filter_complex", graph, "-map", "[out]"],
                *["-ac", "1", "-c:a", "pcm_s16le", "-fflags", "+bitexact", "-f", "wav"],
                str(tmp),
            ),
            settings=settings,
            what=f"making a tone {dst_wav}",
        )
        if proc.returncode != 0:
            raise RenderError(f"{dst_wav}: ffmpeg could not make the tone ({tail(proc.stderr)})")
    return wav_info(dst_wav)


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
    with atomic(dst_mp3, ".mp3") as tmp:
        listing = tmp.with_suffix(".txt")
        lines = ["file '" + str(p.resolve()).replace("'", "'\\''") + "'" for p in parts]
        listing.write_text("ffconcat version 1.0\n" + "\n".join(lines) + "\n", encoding="utf-8")
        try:
            proc = run(
                ffmpeg_args(
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
            raise RenderError(f"{dst_mp3}: joining {len(parts)} parts failed ({tail(proc.stderr)})")
        if tags is not None:
            write_tags(tmp, tags)
        info = probe_audio(tmp, settings=settings)
    return info


def decode_restricted(
    src: Path, dst_wav: Path, *, demuxer: str, demuxers: Sequence[str], settings: AudioSettings
) -> str | None:
    """``src`` → mono 16-bit WAV with no metadata in ``dst_wav`` (written in place: give a
    scratch name), read with the ``file`` protocol, ``demuxers`` only and the container forced
    to ``demuxer``. Returns what ffmpeg reported as damaged, or None."""
    proc = run(
        ffmpeg_args(
            settings,
            *["-v", "error", "-protocol_whitelist", "file", "-format_whitelist", ",".join(demuxers)],
            *["-f", demuxer, "-i", f"file:{src.resolve()}", "-map", "0:a:0", "-vn", "-sn", "-dn"],
            *["-ac", "1", "-ar", str(settings.sample_rate), "-c:a", "pcm_s16le"],
            *["-fflags", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1", "-f", "wav"],
            str(dst_wav),
        ),
        settings=settings,
        what=f"converting {src}",
    )
    problems = error_lines(proc.stderr)
    if proc.returncode != 0 or problems:
        return "; ".join(dict.fromkeys(problems)) or tail(proc.stderr)
    return None


def decode_pcm_wav(src: Path, dst_wav: Path, *, settings: AudioSettings, sample_rate: int = 16000) -> AudioInfo:
    """Any audio → mono 16-bit PCM WAV at ``sample_rate``, untrimmed (e.g. for a speech recogniser)."""
    with atomic(dst_wav, ".wav") as tmp:
        proc = run(
            ffmpeg_args(
                settings,
                *["-v", "error", "-i", str(src), "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sample_rate)],
                *["-c:a", "pcm_s16le", "-map_metadata", "-1", "-f", "wav", str(tmp)],
            ),
            settings=settings,
            what=f"decoding {src}",
        )
        if proc.returncode != 0:
            raise RenderError(f"{src}: cannot decode ({tail(proc.stderr)})")
        info = wav_info(tmp)
    return info


# --- for the benchmark: synthetic recordings and the encode-once limit ---------------


def mix_over_tone(speech: Path, dst: Path, seconds: float, *, settings: AudioSettings) -> None:
    """``speech`` looped over a soft 220 Hz tone, ``seconds`` long, mono AAC in ``dst`` (.m4a).

    It stands in for a Mông, Dao or Giáy reading recorded on a phone (benchmark workloads).
    """
    graph = "[1:a]volume=0.08[t];[0:a]aresample=22050[s];[s][t]amix=inputs=2:duration=shortest:normalize=0"
    args = ffmpeg_args(
        settings,
        *("-v", "error", "-y", "-stream_loop", "-1", "-i", str(speech)),
        *("-f", "lavfi", "-i", "sine=frequency=220:sample_rate=22050", "-filter_complex", graph),
        *("-t", f"{seconds:.2f}", "-ac", "1", "-c:a", "aac", "-b:a", "64k", str(dst)),
    )
    done = run(args, settings=settings, what=f"recording {dst.name}")
    if done.returncode != 0:
        raise RenderError(f"recording {dst.name}: ffmpeg exited with {done.returncode}: {tail(done.stderr)}")


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
        args = ffmpeg_args(
            settings,
            *("-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[out]"),
            *("-c:a", "libmp3lame", "-b:a", f"{settings.bitrate_kbps}k", str(out)),
        )
        what = f"encode-once limit ({len(part)} sources into {out})"
        done = run(args, settings=long_enough, what=what)
        if done.returncode != 0:
            raise RenderError(f"{what}: ffmpeg exited with {done.returncode}: {tail(done.stderr)}")
        written += out.stat().st_size
    return written
