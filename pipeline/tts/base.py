"""What every speech engine offers the render stage."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol


class SpeechEngine(Protocol):
    """Speaks Vietnamese text that is already in its spoken form (see ``pipeline.textnorm``).

    ``synthesize`` writes an audio file that ffmpeg can read (WAV for espeak-ng, MP3 for
    gTTS; ffmpeg goes by the content, not the suffix) atomically at ``dst``. It raises
    ``RenderError`` when this engine cannot speak the text, ``TransientRenderError`` when
    it may work later or another engine may speak instead. Engines never log the text
    at INFO level or above.
    """

    name: str

    def identity(self) -> str:
        """Engine, version, voice and settings: what changes the sound; used in cache keys."""
        ...

    def synthesize(self, text: str, dst: Path) -> None: ...


@contextmanager
def atomic_path(dst: Path) -> Iterator[Path]:
    """A temporary name beside ``dst``, renamed onto it when the block succeeds."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".{dst.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        yield tmp
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
