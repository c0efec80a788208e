"""The one cache of joined MP3s: mastered segments joined into one file without re-encoding.

Whatever asks for the same parts with the same tags gets the same file, joined once: a
program's single file in the outbox (``package``), the commune operator's download of a
program (``web.routes_communes``), the preview of a draft (``Producer.preview_audio``) and the
public archive's MP3 of a bulletin (``publish.audio``). Files live under
``<data_dir>/cache/joined/<key>.mp3``; ``key`` hashes the parts' sha256 and the tags, so a
changed part or title is a new file and a stale one is never handed out. Writes are atomic
(``concat_mp3``), so two processes joining the same key at once both end with the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.audio import ffmpeg_write
from pipeline.audio.types import Id3Tags
from pipeline.config import AudioSettings, Settings
from pipeline.files import temp_beside

#: Part of every key: bump it when the way files are joined changes, so old joins are not reused.
JOIN_VERSION = "1"


def joined_key(part_sha256: Sequence[str], tags: Id3Tags) -> str:
    """The content key of ``part_sha256`` joined in that order and tagged with ``tags``."""
    text = "\n".join([f"joined {JOIN_VERSION}", *part_sha256, "", tags.title, tags.album, tags.language, tags.comment])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class JoinedCache:
    """Joined MP3s by content key under ``root``."""

    root: Path
    audio: AudioSettings

    def path(self, key: str) -> Path:
        return self.root / f"{key}.mp3"

    def join(self, parts: Sequence[Path], *, part_sha256: Sequence[str], tags: Id3Tags) -> Path:
        """The MP3 of ``parts`` joined and tagged: from the cache, or joined now and kept.

        ``part_sha256`` are the parts' digests as the caller knows them (segment store,
        manifest); they name the file, so they must be the digests of ``parts``.
        """
        if len(parts) != len(part_sha256):
            raise ValueError(f"joining {len(parts)} parts: {len(part_sha256)} digests given")
        dst = self.path(joined_key(part_sha256, tags))
        if dst.is_file():
            return dst
        ffmpeg_write.concat_mp3(list(parts), dst, settings=self.audio, tags=tags)
        return dst


def joined_cache(settings: Settings) -> JoinedCache:
    """The deployment's cache: ``<data_dir>/cache/joined``."""
    return JoinedCache(settings.cache_dir / "joined", settings.audio)


def place(src: Path, dst: Path) -> None:
    """Put ``src`` at ``dst`` atomically: a hard link where the file system allows, else a copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(dst)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
