"""The benchmark's own use of ffmpeg and espeak-ng: synthetic recordings and the encode-once limit.

Like ``pipeline.audio`` for the pipeline, this is the one module of the benchmark that
runs these binaries (the naive baseline's pydub lives in ``naive``). Binaries come
from ``AudioSettings`` and ``EspeakSettings``; a failure is a ``RenderError`` naming
the file and the tool's last words.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from pipeline.config import AudioSettings, EspeakSettings
from pipeline.errors import RenderError


def _run(args: Sequence[str], *, what: str, timeout: float) -> None:
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RenderError(f"{what}: {args[0]} could not run ({exc})") from exc
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise RenderError(f"{what}: {args[0]} exited with {done.returncode}: {tail}")


def make_recording(
    dst: Path, text: str, seconds: float, *, voice: str, audio: AudioSettings, espeak: EspeakSettings
) -> None:
    """A synthetic recording: espeak-ng speech looped over a soft tone, ``seconds`` long, AAC in .m4a.

    It stands in for a Mông, Dao or Giáy reading recorded on a phone.
    """
    speech = dst.with_suffix(".speech.wav")
    try:
        _run(
            [espeak.binary, "-v", voice, "-s", "140", "-w", str(speech), text],
            what=f"recording {dst.name}",
            timeout=espeak.timeout_s,
        )
        graph = "[1:a]volume=0.08[t];[0:a]aresample=22050[s];[s][t]amix=inputs=2:duration=shortest:normalize=0"
        _run(
            [
                audio.ffmpeg,
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-stream_loop",
                "-1",
                "-i",
                str(speech),
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=220:sample_rate=22050",
                "-filter_complex",
                graph,
                "-t",
                f"{seconds:.2f}",
                "-ac",
                "1",
                "-c:a",
                "aac",
                "-b:a",
                "64k",
                str(dst),
            ],
            what=f"recording {dst.name}",
            timeout=audio.timeout_s,
        )
    finally:
        speech.unlink(missing_ok=True)


def encode_once(sources: Sequence[Path], dst: Path, *, audio: AudioSettings, chunk: int = 100) -> int:
    """Decode every source once and encode it once to MP3 (one ffmpeg run per ``chunk`` sources).

    This is the least any pipeline has to do with the day's unique audio: read it and
    encode it once, with no loudness analysis and no process per segment. Returns the
    bytes of MP3 written (``dst`` gets a numbered suffix per chunk).
    """
    written = 0
    for start in range(0, len(sources), chunk):
        part = sources[start : start + chunk]
        out = dst.with_name(f"{dst.stem}-{start // chunk}{dst.suffix}")
        inputs: list[str] = []
        labels: list[str] = []
        for i, src in enumerate(part):
            inputs += ["-i", str(src)]
            labels.append(f"[{i}:a]aresample={audio.sample_rate},aformat=sample_fmts=s16:channel_layouts=mono[a{i}]")
        graph = ";".join(labels) + ";" + "".join(f"[a{i}]" for i in range(len(part)))
        graph += f"concat=n={len(part)}:v=0:a=1[out]"
        _run(
            [
                audio.ffmpeg,
                "-nostdin",
                "-v",
                "error",
                "-y",
                *inputs,
                "-filter_complex",
                graph,
                "-map",
                "[out]",
                "-c:a",
                "libmp3lame",
                "-b:a",
                f"{audio.bitrate_kbps}k",
                str(out),
            ],
            what=f"encode-once limit ({len(part)} sources into {out})",
            timeout=max(audio.timeout_s, 3600.0),
        )
        written += out.stat().st_size
    return written
