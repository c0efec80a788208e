"""The segment store: content-addressed audio, the only way stages reach cached segments.

``SegmentStore`` is the protocol; ``SegmentCache`` the local directory under
``data_dir/cache/segments`` (the default, and the shared store when that directory is
on storage several machines mount: every write is a temporary name, then a rename).

A segment is ``<key[:2]>/<key>.mp3`` plus ``<key>.json`` (duration, loudness, engine,
size, sha256). The MP3 is renamed into place first and the JSON last, so an entry
with its JSON is whole; an MP3 without JSON (a crash between the two) is rendered
again. Keys come from what changes the sound, so identical text or clip in a hundred
communes is one entry.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from pipeline.files import temp_beside


@dataclass(frozen=True, slots=True)
class CacheEntry:
    key: str
    duration_ms: int
    bytes: int
    sha256: str
    loudness_lufs: float | None
    true_peak_db: float | None
    engine: str | None


class SegmentStore(Protocol):
    """Where segments live, by key. ``put`` is atomic; an entry is whole or absent."""

    def has(self, key: str) -> bool: ...

    def get(self, key: str) -> CacheEntry | None: ...

    def path(self, key: str) -> Path:
        """Where the MP3 of ``key`` is (or goes: ``audio.mastering.master_mp3`` writes it atomically)."""
        ...

    def open(self, key: str) -> IO[bytes]: ...

    def put(self, entry: CacheEntry) -> None:
        """Record ``entry``; its MP3 must already be at ``path(entry.key)``."""
        ...


class SegmentCache:
    """The local-directory ``SegmentStore``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.mp3"

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def open(self, key: str) -> IO[bytes]:
        return self.path(key).open("rb")

    def _meta_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key`` if it is whole (JSON present, MP3 of the recorded size)."""
        try:
            data: dict[str, Any] = json.loads(self._meta_path(key).read_text(encoding="utf-8"))
            entry = CacheEntry(**data)
            if self.path(key).stat().st_size != entry.bytes:
                return None
        except (OSError, ValueError, TypeError):
            return None
        return entry

    def put(self, entry: CacheEntry) -> None:
        """Record ``entry``; its MP3 must already be in place."""
        path = self._meta_path(entry.key)
        tmp = temp_beside(path)
        tmp.write_text(json.dumps(asdict(entry), sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
