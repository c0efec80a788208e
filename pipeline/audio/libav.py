"""FFmpeg's libraries in this process (PyAV): decoding to PCM, filter chains, MP3 encoding.

No process is started here; every failure is a ``RenderError`` naming the file.
"""

from __future__ import annotations

import wave
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from pipeline.config import AudioSettings
from pipeline.errors import RenderError

_AV_FORMAT_BITEXACT = 0x0400  # AVFMT_FLAG_BITEXACT
_AV_CODEC_BITEXACT = 1 << 23  # AV_CODEC_FLAG_BITEXACT
#: Decoding errors at this level or worse make a file "damaged" (AV_LOG_ERROR).
_AV_LOG_ERROR = 16


#: Samples per frame handed to the filters (one second at 44.1 kHz): few Python round
#: trips, and no whole bulletin in one buffer.
CHUNK = 44100


def _frames(pcm: Any, rate: int) -> Iterator[Any]:
    """Mono s16 samples as PyAV frames of ``CHUNK`` samples, timestamps from 0."""
    import av

    for start in range(0, pcm.size, CHUNK):
        frame = av.AudioFrame.from_ndarray(pcm[start : start + CHUNK].reshape(1, -1), format="s16", layout="mono")
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


def filter_pcm(pcm: Any, rate: int, chain: Sequence[tuple[str, str]], *, what: str, step: str) -> Any:
    """Mono s16 ``pcm`` through a chain of FFmpeg filters ending in float32 mono: the samples.

    A failure is a ``RenderError`` "``what``: ``step`` failed (…)".
    """
    import av
    import numpy as np

    try:
        return _gather(_filtered(_frames(pcm, rate), rate, "s16", chain), np.float32, pcm.size)
    except (av.FFmpegError, ValueError) as exc:
        raise RenderError(f"{what}: {step} failed ({exc})") from exc


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


def decode_pcm(src: Path, *, settings: AudioSettings, what: str) -> Any:
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


def encode_mp3(signal: Any, tmp: Path, *, settings: AudioSettings, what: str) -> None:
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
            for start in range(0, signal.size, CHUNK):
                frame = av.AudioFrame.from_ndarray(
                    signal[start : start + CHUNK].reshape(1, -1), format="fltp", layout="mono"
                )
                frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
                out.mux(stream.encode(frame))  # PyAV cuts the frames to the encoder's 1152
            out.mux(stream.encode(None))
    except (av.FFmpegError, ValueError) as exc:
        raise RenderError(f"{what}: the MP3 encoder failed ({exc})") from exc
