"""Recordings: attach, replace or remove the recording of one language of a bulletin.

What airs changes, so an approved bulletin goes back to draft (the table's ``recording``
column); each is one transaction with its audit entries and webhook event.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import NotFoundError, UsageError
from pipeline.lifecycle.actions import load_in, reader_languages, record_events, set_state
from pipeline.lifecycle.actors import Actor
from pipeline.lifecycle.table import move, refuse_removal
from pipeline.models import Bulletin, Deployment, Recording
from pipeline.store import Database, audit
from pipeline.store import recordings as recording_store


@dataclass(frozen=True, slots=True)
class RecordingChange:
    bulletin: Bulletin
    recording: Recording
    outcome: str  # added | replaced | unchanged | removed
    before: str

    @property
    def back_to_draft(self) -> bool:
        return self.before == "approved" and self.bulletin.status == "draft"


def attach_recording(
    db: Database, actor: Actor, rec: Recording, *, deployment: Deployment | None = None
) -> RecordingChange:
    """Attach or replace the recording of one language; an approved bulletin goes back to draft."""
    with db.begin() as conn:
        b = load_in(conn, db, actor, rec.bulletin_id, deployment)
        nxt = move(b.status, "recording", actor.role, bulletin_id=b.id)
        if actor.languages is not None and rec.language not in reader_languages(actor, b, deployment):
            raise UsageError(
                f"bulletin {b.id}: {actor.name} does not read {rec.language} for a commune of its scope",
                code="lifecycle.language_not_yours",
                bulletin=b.id,
                language=rec.language,
            )
        stored, outcome = recording_store.save_in(conn, db, rec)
        if outcome == "unchanged":
            return RecordingChange(b, stored, outcome, b.status)
        after = set_state(conn, db, b, nxt)
        target = f"bulletin:{b.id}"
        detail = f"{rec.language} {rec.original_name}"
        audit.record_in(conn, db, actor.name, f"recording.{outcome}", target, detail, client=actor.client)
        if b.status == "approved" and after.status == "draft":
            audit.record_in(conn, db, actor.name, "bulletin.back_to_draft", target, "recording", client=actor.client)
        record_events(conn, db, b.status, after)
    return RecordingChange(after, stored, outcome, b.status)


def remove_recording(
    db: Database, actor: Actor, bulletin_id: int, language: str, *, deployment: Deployment | None = None
) -> RecordingChange:
    """Retire the recording of one language (it is kept, no longer current); back to draft if approved."""
    with db.begin() as conn:
        b = load_in(conn, db, actor, bulletin_id, deployment)
        nxt = move(b.status, "recording", actor.role, bulletin_id=bulletin_id)
        refuse_removal(b.status, actor.role, bulletin_id=bulletin_id)
        removed = recording_store.remove_in(conn, db, bulletin_id, language)
        if removed is None:
            raise NotFoundError(
                f"bulletin {bulletin_id}: no {language} recording to remove",
                code="lifecycle.no_recording",
                bulletin=bulletin_id,
                language=language,
            )
        after = set_state(conn, db, b, nxt)
        target = f"bulletin:{bulletin_id}"
        audit.record_in(conn, db, actor.name, "recording.removed", target, language, client=actor.client)
        if b.status == "approved" and after.status == "draft":
            audit.record_in(conn, db, actor.name, "bulletin.back_to_draft", target, "recording", client=actor.client)
        record_events(conn, db, b.status, after)
    return RecordingChange(after, removed, "removed", b.status)
