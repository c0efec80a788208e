"""Checks of a person's reading at upload: too quiet, clipped, mostly silence.

The reading is accepted either way (a culture center may have no better take); the
warnings tell the editor, in Vietnamese, what to fix before it airs.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.audio.ffmpeg import compute_levels
from pipeline.audio.types import Levels
from pipeline.config import AudioSettings
from pipeline.errors import RenderError

log = logging.getLogger(__name__)

#: Warning code → what the editor reads (the web shows it; the CLI prints it).
LEVEL_WARNINGS_VI = {
    "quiet": "Bản ghi quá nhỏ: giọng đọc nghe rất khẽ. Hãy nói gần micrô hơn hoặc tăng âm lượng ghi, rồi ghi lại.",
    "clipped": "Bản ghi bị vỡ tiếng (rè) vì ghi quá to. Hãy để micrô xa hơn hoặc giảm âm lượng ghi, rồi ghi lại.",
    "silent": "Bản ghi phần lớn là im lặng. Hãy kiểm tra micrô và cắt bớt khoảng lặng, rồi tải lên lại.",
}


def level_warnings(levels: Levels) -> tuple[str, ...]:
    """The codes of ``LEVEL_WARNINGS_VI`` that apply, most serious first."""
    codes: list[str] = []
    if levels.mostly_silent:
        codes.append("silent")
    if levels.too_quiet and not levels.mostly_silent:
        codes.append("quiet")
    if levels.clipped:
        codes.append("clipped")
    return tuple(codes)


def check_reading(path: Path, *, settings: AudioSettings) -> tuple[str, ...]:
    """Measure ``path`` (one ffmpeg run) and return its warning codes (none if it cannot be measured:
    the file was accepted by ffprobe already, a failed measurement must not lose the upload)."""
    try:
        return level_warnings(compute_levels(path, settings=settings))
    except RenderError as exc:
        log.warning("%s: levels not checked: %s", path.name, exc)
        return ()
