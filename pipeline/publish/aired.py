"""What aired (or is built to air): the one place the publishing side reads the outbox manifests.

``aired_items`` reads ``outbox/<commune>/programs/<date>/manifest.json`` and
``outbox/<commune>/emergency/<bulletin>/manifest.json`` (schema ``loa.manifest/1``, written
by ``pipeline/package.py``) and returns one ``AiredItem`` per program, bulletin and
language: the mastered segments that carried that bulletin in that language, in order.
When the manifest changes (``loa.manifest/2``), only this function changes.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
def _load(path: str, _mtime_ns: int, _size: int) -> dict[str, Any] | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable manifest skipped (%s)", path, exc)
        return None
    return data if isinstance(data, dict) else None


def _manifest(path: Path) -> dict[str, Any] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return _load(str(path), st.st_mtime_ns, st.st_size)


def _manifests(root: Path, day: dt.date | None) -> Iterable[Path]:
    programs = root / "programs"
    if day is not None:
        yield programs / day.isoformat() / "manifest.json"
    elif programs.is_dir():
        yield from sorted(programs.glob("*/manifest.json"))
    emergency = root / "emergency"
    if emergency.is_dir():
        yield from sorted(emergency.glob("*/manifest.json"))


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
        for path in _manifests(root, day):
            manifest = _manifest(path)
            if manifest is None:
                continue
            for program in manifest.get("programs", []):
                out.extend(_items_of(root, code, program, day, bulletin_id))
    out.sort(key=lambda i: (i.start, i.commune, i.bulletin_id, i.language))
    return out


def _items_of(
    root: Path, code: str, program: dict[str, Any], day: dt.date | None, bulletin_id: int | None
) -> list[AiredItem]:
    try:
        start = dt.datetime.fromisoformat(str(program["start"]))
        program_id = str(program["id"])
    except (KeyError, ValueError):
        return []
    if day is not None and start.date() != day:
        return []
    groups: dict[tuple[int, str], list[AiredPart]] = {}
    for item in program.get("items", []):
        bid = item.get("bulletin_id")
        if not isinstance(bid, int) or item.get("kind") not in BULLETIN_KINDS:
            continue
        if bulletin_id is not None and bid != bulletin_id:
            continue
        part = AiredPart(
            path=root / str(item["file"]),
            sha256=str(item["sha256"]),
            bytes=int(item["bytes"]),
            duration_ms=int(item["duration_ms"]),
            kind=str(item["kind"]),
        )
        groups.setdefault((bid, str(item.get("language", "vi"))), []).append(part)
    kind = str(program.get("kind", "program"))
    return [
        AiredItem(
            commune=code,
            date=start.date(),
            slot=str(program.get("slot", kind)),
            start=start,
            program_id=program_id,
            kind=kind,
            bulletin_id=bid,
            language=lang,
            parts=tuple(parts),
        )
        for (bid, lang), parts in groups.items()
    ]
