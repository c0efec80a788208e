"""Standard phrases per language, recorded from the web (docs/phrases.md).

The templates use clips of ``voices/catalog.toml`` (greetings, "here is a bulletin", the
closing, the consultation call to action). Many ship as labelled **placeholders**. A reader,
editor or approver records or uploads a take from ``/phrases`` — through the same upload gate
(``audio.uploads``) and level checks (``audio.levels``) as readings — stored under
``data_dir/phrases`` and in the store (``store.phrases``), never in the repository. An
approver (or admin) approves it; from the next build on the approved take replaces the
repository's clip (``pipeline.voices.effective_catalog``): its bytes, hence its segment key, change, and it is
no longer a placeholder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import NotFoundError, RecordingRefused, RenderError, UsageError
from pipeline.lifecycle.actors import Actor
from pipeline.store import Database
from pipeline.store import phrases as phrase_store
from pipeline.voices import Catalog

RECORDERS = ("admin", "editor", "approver", "reader")
APPROVERS = ("admin", "approver")
STATE_VI = {
    "placeholder": "Bản tạm (máy đọc)",
    "awaiting": "Đã thu, chờ duyệt",
    "approved": "Đã duyệt",
    "recorded": "Bản ghi có sẵn",
}


@dataclass(frozen=True, slots=True)
class PhraseState:
    key: str
    language: str
    meaning: str  # the Vietnamese meaning (the catalog's translation)
    state: str  # placeholder | awaiting | approved | recorded (in voices/, by a person)
    recorded_by: str  # who recorded what airs ("" for a placeholder)
    awaiting: phrase_store.PhraseTake | None  # the take an approver hears, if any
    approved: phrase_store.PhraseTake | None


def phrase_keys(catalog: Catalog, languages: tuple[str, ...]) -> list[str]:
    """The catalog's spoken clips (not the chimes) in ``languages``, in catalog order."""
    return [c.key for c in catalog.clips if c.language in languages and c.language != "zxx"]


def phrase_states(catalog: Catalog, db: Database, languages: tuple[str, ...]) -> list[PhraseState]:
    takes = phrase_store.current(db)
    out = []
    for key in phrase_keys(catalog, languages):
        clip = catalog.get(key)
        assert clip is not None
        mine = takes.get(key, {})
        approved, awaiting = mine.get(phrase_store.APPROVED), mine.get(phrase_store.AWAITING)
        if awaiting is not None:
            state = "awaiting"
        elif approved is not None:
            state = "approved"
        else:
            state = "placeholder" if clip.placeholder else "recorded"
        by = approved.recorded_by if approved else ("" if clip.placeholder else clip.speaker)
        out.append(PhraseState(key, clip.language, clip.translation, state, by, awaiting, approved))
    return out


def _check_recorder(actor: Actor, key: str, language: str) -> None:
    if actor.role not in RECORDERS or (actor.languages is not None and language not in actor.languages):
        raise UsageError(
            f"phrase {key}: {actor.name} ({actor.role}) may not record it", code="phrase.not_allowed", key=key
        )


def prepare_take(
    catalog: Catalog, key: str, src: Path, *, actor: Actor, original_name: str, settings: Settings
) -> phrase_store.PhraseTake:
    """Check an uploaded take of ``key`` (the upload gate) and store it as the internal WAV under data_dir."""
    from pipeline.audio.uploads import keep_upload  # the ffmpeg adapter

    clip = catalog.get(key)
    if clip is None or clip.language == "zxx":
        raise NotFoundError(f"phrase {key}: not a phrase of voices/catalog.toml", code="phrase.unknown", key=key)
    _check_recorder(actor, key, clip.language)
    try:
        dest_dir = settings.data_dir / "phrases" / clip.language
        kept = keep_upload(src, dest_dir, key.split("/", 1)[1], settings=settings.audio)
    except RecordingRefused as exc:
        raise RecordingRefused(f"phrase {key}: {exc}", reason=exc.reason, **exc.params) from exc
    except RenderError as exc:
        raise RecordingRefused(f"phrase {key}: not audio that ffmpeg can read ({exc})", reason="not_audio") from exc
    return phrase_store.PhraseTake(
        key, clip.language, kept.path, kept.sha256, kept.wav.duration_ms, original_name, recorded_by=actor.name
    )


def submit_take(db: Database, actor: Actor, take: phrase_store.PhraseTake) -> phrase_store.PhraseTake:
    """Store a checked take; it waits for an approver."""
    from pipeline.store import audit

    _check_recorder(actor, take.key, take.language)
    stored = phrase_store.add_take(db, take)
    audit.record(db, actor.name, "phrase.recorded", f"phrase:{take.key}", take.sha256[:16], client=actor.client)
    return stored


def approve_phrase(db: Database, actor: Actor, key: str) -> phrase_store.PhraseTake:
    """Approve the take awaiting for ``key``: it airs from the next build on."""
    from pipeline.store import audit

    if actor.role not in APPROVERS and actor.role != "system":
        raise UsageError(
            f"phrase {key}: {actor.name} ({actor.role}) may not approve", code="phrase.not_allowed", key=key
        )
    take = phrase_store.approve_take(db, key, by=actor.name)
    audit.record(db, actor.name, "phrase.approved", f"phrase:{key}", take.sha256[:16], client=actor.client)
    return take
