"""One MP3 per aired bulletin and language, joined (not re-encoded) from the segments that aired.

Files live under ``data/publish/audio/<key>.mp3``, ``key`` being the content key of the
parts, so a bulletin that aired the same way in many communes is one file, built once: joined
in the one joined-MP3 cache (``pipeline.audio.joined``) and linked here.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.audio.joined import joined_cache, place
from pipeline.audio.types import Id3Tags
from pipeline.config import Settings
from pipeline.errors import RenderError
from pipeline.models import LANGUAGES
from pipeline.publish.aired import AiredItem

_KEY_RE = re.compile(r"^[0-9a-f]{64}$")


def audio_dir(settings: Settings) -> Path:
    return settings.data_dir / "publish" / "audio"


def path_of_key(settings: Settings, key: str) -> Path | None:
    """The published file for ``key`` if it exists (``key`` is checked: 64 hex digits)."""
    if not _KEY_RE.match(key):
        return None
    path = audio_dir(settings) / f"{key}.mp3"
    return path if path.is_file() else None


def published_mp3(item: AiredItem, *, settings: Settings) -> Path:
    """The joined MP3 of ``item``, made on first use."""
    dst = audio_dir(settings) / f"{item.key}.mp3"
    if dst.is_file():
        return dst
    missing = [p.path for p in item.parts if not p.path.is_file()]
    if missing:
        raise RenderError(f"program {item.program_id}: segment {missing[0]} is no longer in the outbox")
    if len(item.parts) == 1:
        place(item.parts[0].path, dst)
        return dst
    joined = joined_cache(settings).join(
        [p.path for p in item.parts],
        part_sha256=[p.sha256 for p in item.parts],
        tags=Id3Tags(
            title=f"Bản tin {item.bulletin_id} — {LANGUAGES.get(item.language, item.language)}",
            album="Loa",
            language=item.language,
        ),
    )
    place(joined, dst)
    return dst
