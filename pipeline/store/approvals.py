"""What an approver approved (revision and recordings), so that a later change can be shown.

A bulletin goes back to draft when what airs changes: a new revision, or a recording
added, replaced or removed (``pipeline.lifecycle`` decides; ``record_in`` is written in the
approval's transaction). ``changes_since_approval`` names what changed since the last approval.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.models import Bulletin
from pipeline.store.db import Database, as_utc, utcnow
from pipeline.store.recordings import current_in, current_recordings


@dataclass(frozen=True, slots=True)
class Approval:
    bulletin_id: int
    revision: int
    content_hash: str
    recordings: dict[str, str]  # language → sha256
    approved_by: str | None
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class Changes:
    """What differs from the last approval: content fields, and recordings by language."""

    since: Approval
    fields: tuple[str, ...]
    recordings_added: tuple[str, ...]
    recordings_replaced: tuple[str, ...]

    @property
    def any(self) -> bool:
        return bool(self.fields or self.recordings_added or self.recordings_replaced)


def record_in(conn: Connection, db: Database, b: Bulletin, *, by: str | None) -> dict[str, str]:
    """Inside the caller's transaction: what ``b`` is approved as (revision, content, every
    current recording's sha256). Returns the recordings (language → sha256)."""
    assert b.id is not None
    recs = {lang: r.sha256 for lang, r in current_in(conn, db, b.id).items()}
    conn.execute(
        db.table("approvals")
        .insert()
        .values(
            bulletin_id=b.id,
            revision=b.revision,
            content_hash=b.content_hash,
            recordings=recs,
            approved_by=by,
            at=utcnow(),
        )
    )
    return recs


def last_approval(db: Database, bulletin_id: int) -> Approval | None:
    t = db.table("approvals")
    query = sa.select(t).where(t.c.bulletin_id == bulletin_id).order_by(t.c.id.desc()).limit(1)
    with db.begin() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        return None
    return Approval(
        bulletin_id=row["bulletin_id"],
        revision=row["revision"],
        content_hash=row["content_hash"],
        recordings=dict(row["recordings"]),
        approved_by=row["approved_by"],
        at=as_utc(row["at"]) or utcnow(),
    )


def changes_since_approval(db: Database, b: Bulletin) -> Changes | None:
    """None when the bulletin was never approved (or nothing is known of that approval)."""
    assert b.id is not None
    last = last_approval(db, b.id)
    if last is None:
        return None
    fields: list[str] = []
    if last.content_hash != b.content_hash:
        rev = db.table("bulletin_revisions")
        with db.begin() as conn:
            rows = {
                r["revision"]: r["content"]
                for r in conn.execute(
                    sa.select(rev.c.revision, rev.c.content).where(
                        rev.c.bulletin_id == b.id, rev.c.revision.in_([last.revision, b.revision])
                    )
                ).mappings()
            }
        old: dict[str, Any] = rows.get(last.revision) or {}
        new: dict[str, Any] = rows.get(b.revision) or {}
        fields = [k for k in new if old.get(k) != new.get(k)]
    now = {lang: r.sha256 for (_, lang), r in current_recordings(db, [b.id]).items()}
    added = tuple(sorted(lang for lang in now if lang not in last.recordings))
    replaced = tuple(sorted(lang for lang in now if lang in last.recordings and last.recordings[lang] != now[lang]))
    return Changes(since=last, fields=tuple(fields), recordings_added=added, recordings_replaced=replaced)
