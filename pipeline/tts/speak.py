"""Speak one text to a WAV file with the configured chain or one named engine (``loa text speak``)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.audio import ingest
from pipeline.config import Settings
from pipeline.errors import RenderError, UsageError
from pipeline.tts.chain import EngineChain, build_engine, build_engine_chain, with_voice


@dataclass(frozen=True, slots=True)
class Spoken:
    path: Path
    engine: str
    duration_ms: int


def speak_to_wav(
    spoken: str,
    out: Path,
    *,
    settings: Settings,
    engine: str | None = None,
    voice: str | None = None,
    speed: str | None = None,
) -> Spoken:
    """``spoken`` (already in its spoken form) → a mono 16-bit WAV at ``out``, written atomically."""
    if not any(ch.isalnum() for ch in spoken):
        raise UsageError("nothing to speak: the text has no words once normalized")
    if out.is_dir():
        raise UsageError(f"{out}: is a directory; give a file name such as thu.wav")
    if engine is None:
        chain = build_engine_chain(settings.tts, outbound=settings.outbound)
    else:
        tts = with_voice(engine, settings.tts, voice=voice, speed=speed)
        chain = EngineChain([build_engine(engine, tts, outbound=settings.outbound)])
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".speak-") as tmp:
        raw = Path(tmp) / "tts.audio"
        name = chain.synthesize(spoken, raw)
        try:
            info = ingest.ingest_audio(raw, out, settings=settings.audio, trim_silence=False)
        except RenderError as exc:
            raise RenderError(f"{name}: its audio could not be read: {exc}") from exc
    return Spoken(out, name, info.duration_ms)
