"""The content-addressed segment cache under ``data_dir/cache/segments``.

A segment is ``<key[:2]>/<key>.mp3`` plus ``<key>.json`` (duration, loudness, engine,
size, sha256). The MP3 is renamed into place first and the JSON last, so an entry
with its JSON is whole; an MP3 without JSON (a crash between the two) is rendered
again. Keys come from what changes the sound, so identical text or clip in a hundred
communes is one entry.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class CacheEntry:
    key: str
    duration_ms: int
    bytes: int
    sha256: str
    loudness_lufs: float | None
    true_peak_db: float | None
    engine: str | None


class SegmentCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def mp3_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.mp3"

    def _meta_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key`` if it is whole (JSON present, MP3 of the recorded size)."""
        try:
            data: dict[str, Any] = json.loads(self._meta_path(key).read_text(encoding="utf-8"))
            entry = CacheEntry(**data)
            if self.mp3_path(key).stat().st_size != entry.bytes:
                return None
        except (OSError, ValueError, TypeError):
            return None
        return entry

    def put(self, entry: CacheEntry) -> None:
        """Record ``entry``; its MP3 must already be in place."""
        path = self._meta_path(entry.key)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(json.dumps(asdict(entry), sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
