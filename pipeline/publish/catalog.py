"""What may be published: aired items joined with their bulletins, filtered and grouped.

Only approved, public bulletins appear; a withdrawn bulletin (or one revised back to draft)
disappears at once because its status is read from the store on every request; a bulletin
past its ``valid_until`` stays, marked expired. Only programs whose start has passed count
as aired.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.config import Settings
from pipeline.models import LANGUAGES, Bulletin, Commune, Deployment
from pipeline.publish.aired import AiredItem, aired_items
from pipeline.store import Database
from pipeline.store import bulletins as bulletin_store
from pipeline.store.recordings import current_recordings


@dataclass(frozen=True, slots=True)
class Entry:
    """One bulletin as it aired in one program of one commune, with its audio per language."""

    bulletin: Bulletin
    commune: Commune
    date: dt.date
    slot: str
    start: dt.datetime
    program_id: str
    kind: str  # "program" | "emergency"
    audios: tuple[AiredItem, ...]  # in the commune's broadcast order of languages
    expired: bool
    transcripts: tuple[tuple[str, str], ...] = ()  # (language, the reading's text as read)

    def transcript(self, language: str) -> str:
        """The reader's typed text of the reading in ``language`` ("" when there is none)."""
        return dict(self.transcripts).get(language, "")

    def guid(self, language: str) -> str:
        """Stable across rebuilds: where, when and what, not the file's bytes."""
        raw = f"loa:{self.commune.code}:{self.program_id}:{self.bulletin.id}:{language}"
        return "urn:loa:" + hashlib.sha256(raw.encode()).hexdigest()[:32]

    @property
    def anchor(self) -> str:
        return f"b{self.bulletin.id}-{self.slot}"


def bulletin_text(b: Bulletin) -> str:
    """The Vietnamese text as read: title, source, then the body."""
    head = f"{b.title}.\n{b.source}{', ' + b.reference if b.reference else ''}."
    return f"{head}\n\n{b.body}\n"


def text_for(b: Bulletin, language: str, *, transcript: str = "") -> str:
    """The text that goes with the audio in ``language``: the reading's text as read when its
    reader typed it (headed by its language's name), else the Vietnamese text (a recording
    in another language names its language first)."""
    name = LANGUAGES.get(language, language)
    if transcript.strip():
        return f"{b.title} — bản đọc {name.lower()}:\n\n{transcript.strip()}\n"
    if language == "vi":
        return bulletin_text(b)
    return f"Bản ghi {name.lower()}. Nội dung bằng tiếng Việt:\n\n{bulletin_text(b)}"


def text_language(language: str, transcript: str) -> str:
    """The language of ``text_for``'s text: the reading's own with a transcript, else Vietnamese."""
    return language if transcript.strip() else "vi"


def reading_transcripts(db: Database, bulletin_ids: Iterable[int]) -> dict[tuple[int, str], str]:
    """(bulletin, language) → the current reading's text as read, where its reader typed one."""
    recs = current_recordings(db, sorted(set(bulletin_ids)))
    return {key: r.transcript for key, r in recs.items() if r.transcript.strip()}


def fold(text: str) -> str:
    """Lower case without diacritics (đ → d), so "bao hiem" finds "bảo hiểm"."""
    decomposed = unicodedata.normalize("NFD", text.casefold().replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def matches(b: Bulletin, query: str) -> bool:
    if not query.strip():
        return True
    hay = fold(" ".join((b.title, b.source, b.reference, b.body, b.category)))
    return all(word in hay for word in fold(query).split())


def publishable(b: Bulletin | None) -> bool:
    return b is not None and b.status == "approved" and b.public


def entries(
    settings: Settings,
    deployment: Deployment,
    db: Database,
    *,
    now: dt.datetime,
    communes: Iterable[str] | None = None,
    day: dt.date | None = None,
    bulletin_id: int | None = None,
    query: str = "",
    language: str | None = None,
) -> list[Entry]:
    """Published entries, newest first."""
    codes = list(communes) if communes is not None else [c.code for c in deployment.communes]
    items = aired_items(settings, communes=codes, day=day, bulletin_id=bulletin_id)
    bulletins = {b.id: b for b in bulletin_store.list_bulletins(db)}
    today = now.astimezone(settings.tz).date()
    grouped: dict[tuple[str, str, int], list[AiredItem]] = {}
    for item in items:
        if item.start > now or (language is not None and item.language != language):
            continue
        b = bulletins.get(item.bulletin_id)
        if not publishable(b) or b is None or not matches(b, query):
            continue
        grouped.setdefault((item.commune, item.program_id, item.bulletin_id), []).append(item)
    typed = reading_transcripts(db, (bid for _, _, bid in grouped))
    out: list[Entry] = []
    for (code, _, bid), group in grouped.items():
        commune = deployment.commune(code)
        b = bulletins[bid]
        if commune is None:
            continue
        order = {lang: i for i, lang in enumerate(commune.languages)}
        group.sort(key=lambda i: order.get(i.language, 99))
        first = group[0]
        out.append(
            Entry(
                bulletin=b,
                commune=commune,
                date=first.date,
                slot=first.slot,
                start=first.start,
                program_id=first.program_id,
                kind=first.kind,
                audios=tuple(group),
                expired=b.valid_until < today,
                transcripts=tuple((i.language, typed[(bid, i.language)]) for i in group if (bid, i.language) in typed),
            )
        )
    out.sort(key=lambda e: (e.start, e.commune.code, e.bulletin.id or 0), reverse=True)
    return out


def emergencies_in_force(entries_: list[Entry], *, today: dt.date) -> list[Entry]:
    """Emergency bulletins valid today, one entry per bulletin (the latest airing)."""
    seen: set[int | None] = set()
    out: list[Entry] = []
    for e in entries_:
        b = e.bulletin
        if b.priority == "emergency" and b.valid_on(today) and b.id not in seen:
            seen.add(b.id)
            out.append(e)
    return out
