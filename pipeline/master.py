"""Master: loudness to one target and MP3 encoding, once per segment.

Each segment is brought to ``audio.target_lufs`` (true peak ≤ ``audio.true_peak_db``) and
encoded CBR mono MP3 with ID3v2.4 tags once, into the segment cache. Because one
segment serves many communes, its tags say what it is (title, language, bulletin), not
where it airs; the single-file program of a commune (joined by ``pipeline.audio.joined``)
carries the album tag "<commune> — <date> — <slot>".
"""

from __future__ import annotations

from pathlib import Path

from pipeline.audio import loudness, mastering
from pipeline.audio.types import Id3Tags
from pipeline.config import Settings
from pipeline.segcache import CacheEntry, SegmentStore


def master_segment(
    wav: Path,
    key: str,
    *,
    title: str,
    language: str,
    bulletin_id: int | None,
    engine: str | None,
    cache: SegmentStore,
    settings: Settings,
    source_loudness: loudness.Loudness | None = None,
) -> CacheEntry:
    """Encode ``wav`` into the cache under ``key`` and record it."""
    result = mastering.master_mp3(
        wav,
        cache.path(key),
        settings=settings.audio,
        tags=Id3Tags(
            title=title,
            album="Loa",
            language=language,
            comment=f"bulletin {bulletin_id}" if bulletin_id else "",
        ),
        source_loudness=source_loudness,
    )
    silent = result.loudness.silent
    entry = CacheEntry(
        key=key,
        duration_ms=result.duration_ms,
        bytes=result.bytes,
        sha256=result.sha256,
        loudness_lufs=None if silent else round(result.loudness.integrated_lufs, 2),
        true_peak_db=None if silent else round(result.loudness.true_peak_db, 2),
        engine=engine,
    )
    cache.put(entry)
    return entry
