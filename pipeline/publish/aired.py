"""What aired (or is built to air): the one place the publishing side reads the outbox manifests.

``aired_items`` reads the typed manifests (``loa.manifest/2``, ``pipeline/manifest.py``)
the packager keeps per endpoint under ``outbox/<commune>/<folder>/manifests/<endpoint>.json``
(``<folder>`` is ``programs/<date>`` or ``emergency/<bulletin>``) and returns one
``AiredItem`` per program, bulletin and language: the mastered segments that carried that
bulletin in that language, in order, and where their sound came from. A playlist
endpoint's manifest is read (its items name their files under ``media/``); a commune that
has only single-file endpoints has no per-item files in the outbox and is skipped.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline import manifest as mf
from pipeline.config import Settings

log = logging.getLogger(__name__)

#: Segment kinds that belong to a bulletin's own text or recording (not chimes, pauses, standard clips).
BULLETIN_KINDS = frozenset({"speech", "say", "recording"})


@dataclass(frozen=True, slots=True)
class AiredPart:
    path: Path  # the mastered MP3 in the commune's outbox
    sha256: str
    bytes: int
    duration_ms: int
    kind: str  # "speech" | "recording" …
    human: bool = False  # a person's voice (a recording), not a machine's


@dataclass(frozen=True, slots=True)
class AiredItem:
    commune: str  # commune code
    date: dt.date
    slot: str  # slot name, or "emergency"
    start: dt.datetime  # when the program starts (tz-aware)
    program_id: str
    kind: str  # "program" | "emergency"
    bulletin_id: int
    language: str
    parts: tuple[AiredPart, ...]

    @property
    def duration_ms(self) -> int:
        return sum(p.duration_ms for p in self.parts)

    @property
    def key(self) -> str:
        """Content key of the joined audio: the same parts give the same file, whatever the commune."""
        return hashlib.sha256(" ".join(p.sha256 for p in self.parts).encode()).hexdigest()


@functools.lru_cache(maxsize=4096)
def _load(path: str, _mtime_ns: int, _size: int) -> mf.Manifest | None:
    try:
        return mf.read(Path(path))
    except mf.ManifestError as exc:
        log.warning("%s: unreadable manifest skipped (%s)", path, exc)
        return None


def _manifest(folder: Path) -> mf.Manifest | None:
    """The manifest of a playlist endpoint of ``folder`` (items with files), if there is one."""
    found = sorted((folder / "manifests").glob("*.json"))
    for path in found:
        try:
            st = path.stat()
        except OSError:
            continue
        m = _load(str(path), st.st_mtime_ns, st.st_size)
        if m is not None and m.format == "playlist":
            return m
    return None


def _folders(root: Path, day: dt.date | None) -> Iterable[Path]:
    programs = root / "programs"
    if day is not None:
        yield programs / day.isoformat()
    elif programs.is_dir():
        yield from sorted(p for p in programs.iterdir() if p.is_dir())
    emergency = root / "emergency"
    if emergency.is_dir():
        yield from sorted(p for p in emergency.iterdir() if p.is_dir())


def aired_items(
    settings: Settings,
    *,
    communes: Iterable[str],
    day: dt.date | None = None,
    bulletin_id: int | None = None,
) -> list[AiredItem]:
    """Every (program, bulletin, language) built for ``communes`` (on ``day`` if given), by start time."""
    out: list[AiredItem] = []
    for code in communes:
        root = settings.outbox_dir / code
        for folder in _folders(root, day):
            manifest = _manifest(folder)
            if manifest is None:
                continue
            for program in manifest.programs:
                out.extend(_items_of(root, code, program, day, bulletin_id))
    out.sort(key=lambda i: (i.start, i.commune, i.bulletin_id, i.language))
    return out


def _items_of(
    root: Path, code: str, program: mf.ProgramEntry, day: dt.date | None, bulletin_id: int | None
) -> list[AiredItem]:
    if day is not None and program.start.date() != day:
        return []
    groups: dict[tuple[int, str], list[AiredPart]] = {}
    for item in program.items:
        bid = item.bulletin_id
        if bid is None or item.kind not in BULLETIN_KINDS or item.file is None:
            continue
        if bulletin_id is not None and bid != bulletin_id:
            continue
        part = AiredPart(
            path=root / item.file,
            sha256=item.sha256,
            bytes=item.bytes,
            duration_ms=item.duration_ms,
            kind=item.kind,
            human=item.source.human,
        )
        groups.setdefault((bid, item.language), []).append(part)
    return [
        AiredItem(
            commune=code,
            date=program.start.date(),
            slot=program.slot,
            start=program.start,
            program_id=program.id,
            kind=program.kind,
            bulletin_id=bid,
            language=lang,
            parts=tuple(parts),
        )
        for (bid, lang), parts in groups.items()
    ]
