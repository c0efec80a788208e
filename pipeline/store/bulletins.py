"""Bulletins and their revisions.

Doors never write here: every change goes through ``pipeline.lifecycle``, which calls the
functions that take a ``Connection`` (``save_in``, ``set_in`` …) inside its one transaction.
``save_bulletins``, ``approve``, ``withdraw`` and ``end`` remain for tests' fixtures and write
no audit entry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from pipeline.errors import NotFoundError, UsageError
from pipeline.models import Bulletin, ConsultationSpec, Question, tier_of
from pipeline.store.db import Database, as_utc, utcnow

CONTENT_FIELDS = (
    "title",
    "category",
    "priority",
    "source",
    "reference",
    "valid_from",
    "valid_until",
    "targets",
    "languages",
    "body",
)


def content_of(b: Bulletin) -> dict[str, Any]:
    """What a revision is made of (a replay cadence only when one is set, so older hashes stay)."""
    out: dict[str, Any] = {}
    for name in CONTENT_FIELDS:
        value = getattr(b, name)
        out[name] = (
            value.isoformat() if isinstance(value, dt.date) else list(value) if isinstance(value, tuple) else value
        )
    # Policy fields only when set, so bulletins without them keep their content hash.
    if b.policy:
        out["policy"], out["stage"] = b.policy, b.stage
    if b.consultation is not None:
        out["consultation"] = spec_to_json(b.consultation)
    if b.replay_every_minutes is not None:
        out["replay_every_minutes"] = b.replay_every_minutes
    if not b.public:  # only when set, so that the hashes of earlier bulletins do not change
        out["public"] = False
    return out


def spec_to_json(spec: ConsultationSpec) -> dict[str, Any]:
    return {
        "code": spec.code,
        "opens": spec.opens.isoformat(),
        "closes": spec.closes.isoformat(),
        "agency": spec.agency,
        "questions": [{"text": q.text, "kind": q.kind, "choices": list(q.choices)} for q in spec.questions],
    }


def spec_from_json(data: dict[str, Any]) -> ConsultationSpec:
    return ConsultationSpec(
        code=data["code"],
        opens=dt.date.fromisoformat(data["opens"]),
        closes=dt.date.fromisoformat(data["closes"]),
        agency=data["agency"],
        questions=tuple(Question(q["text"], q["kind"], tuple(q.get("choices", ()))) for q in data["questions"]),
    )


def _provenance(b: Bulletin) -> dict[str, Any]:
    """Where a CAP alert made the bulletin, and what it supersedes: stored, not part of the content."""
    return {
        "cap_identifier": b.cap_identifier,
        "cap_sender": b.cap_sender,
        "cap_sent": b.cap_sent.astimezone(dt.UTC) if b.cap_sent else None,  # SQLite keeps no offset
        "cap_references": list(b.cap_references) if b.cap_identifier else None,
        "supersedes": b.supersedes,
    }


def content_hash(b: Bulletin) -> str:
    blob = json.dumps(content_of(b), ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def _from_row(row: RowMapping) -> Bulletin:
    return Bulletin(
        id=row["id"],
        title=row["title"],
        category=row["category"],
        priority=tier_of(row["priority"]) or row["priority"],
        source=row["source"],
        reference=row["reference"],
        valid_from=row["valid_from"],
        valid_until=row["valid_until"],
        targets=tuple(row["targets"]),
        languages=tuple(row["languages"]),
        body=row["body"],
        revision=row["revision"],
        status=row["status"],
        content_hash=row["content_hash"],
        source_file=row["source_file"],
        created_at=as_utc(row["created_at"]),
        approved_at=as_utc(row["approved_at"]),
        withdrawn_at=as_utc(row["withdrawn_at"]),
        policy=row.get("policy") or "",
        stage=row.get("stage") or "",
        consultation=spec_from_json(row["consultation"]) if row.get("consultation") else None,
        replay_every_minutes=row.get("replay_every_minutes"),
        cap_identifier=row.get("cap_identifier"),
        cap_sender=row.get("cap_sender"),
        cap_sent=as_utc(row.get("cap_sent")),
        cap_references=tuple(row.get("cap_references") or ()),
        supersedes=row.get("supersedes"),
        public=bool(row.get("public", True)),
    )


def save_bulletins(db: Database, bulletins: Sequence[Bulletin]) -> list[tuple[Bulletin, str]]:
    """Store all bulletins in one transaction; each outcome is added, revised or unchanged.

    A bulletin with the title and source of a stored one is the same bulletin: unchanged
    content is a no-op, changed content becomes a new revision and goes back to draft
    (an approver must approve what will actually air).
    """
    out: list[tuple[Bulletin, str]] = []
    with db.begin() as conn:
        for b in bulletins:
            out.append(_save_one(conn, db, b))
    return out


def save_in(conn: Connection, db: Database, b: Bulletin) -> tuple[Bulletin, str]:
    """Store one bulletin inside the caller's transaction (see ``save_bulletins``)."""
    return _save_one(conn, db, b)


def get_in(conn: Connection, db: Database, bulletin_id: int) -> Bulletin | None:
    """The bulletin, read inside the caller's transaction; None when there is none."""
    if not 0 < bulletin_id <= MAX_ID:
        return None
    t = db.table("bulletins")
    row = conn.execute(sa.select(t).where(t.c.id == bulletin_id)).mappings().first()
    return None if row is None else _from_row(row)


def find_in(conn: Connection, db: Database, title: str, source: str) -> Bulletin | None:
    """The bulletin with this title and source (what names a bulletin), inside a transaction."""
    t = db.table("bulletins")
    row = conn.execute(sa.select(t).where(t.c.title == title, t.c.source == source)).mappings().first()
    return None if row is None else _from_row(row)


def set_in(conn: Connection, db: Database, bulletin_id: int, **values: Any) -> Bulletin:
    """Change a bulletin's stored state inside the caller's transaction; the bulletin after."""
    t = db.table("bulletins")
    conn.execute(t.update().where(t.c.id == bulletin_id).values(**values, updated_at=utcnow()))
    return _from_row(conn.execute(sa.select(t).where(t.c.id == bulletin_id)).mappings().one())


def cap_bulletins_in(conn: Connection, db: Database) -> list[Bulletin]:
    """Every bulletin a CAP message made, oldest first."""
    t = db.table("bulletins")
    query = sa.select(t).where(t.c.cap_identifier.is_not(None)).order_by(t.c.id)
    return [_from_row(r) for r in conn.execute(query).mappings()]


def lapsed_in(conn: Connection, db: Database, today: dt.date) -> list[Bulletin]:
    """Drafts and approved bulletins whose validity ended before ``today``."""
    t = db.table("bulletins")
    query = sa.select(t).where(t.c.status.in_(("draft", "approved")), t.c.valid_until < today).order_by(t.c.id)
    return [_from_row(r) for r in conn.execute(query).mappings()]


def _save_one(conn: Connection, db: Database, b: Bulletin) -> tuple[Bulletin, str]:
    t, rev = db.table("bulletins"), db.table("bulletin_revisions")
    digest = content_hash(b)
    now = utcnow()
    row = conn.execute(sa.select(t).where(t.c.title == b.title, t.c.source == b.source)).mappings().first()
    values = (
        content_of(b)
        | _provenance(b)
        | {
            "replay_every_minutes": b.replay_every_minutes,
            "valid_from": b.valid_from,
            "valid_until": b.valid_until,
            "content_hash": digest,
            "source_file": b.source_file,
            "updated_at": now,
            "policy": b.policy or None,
            "stage": b.stage or None,
            "consultation": spec_to_json(b.consultation) if b.consultation else None,
            "public": b.public,
        }
    )
    if row is None:
        new_id = conn.execute(
            t.insert().values(**values, revision=1, status="draft", created_at=now)
        ).inserted_primary_key[0]  # type: ignore[index]
        revision, outcome = 1, "added"
    elif row["content_hash"] == digest:
        return _from_row(row), "unchanged"
    else:
        new_id, revision, outcome = row["id"], row["revision"] + 1, "revised"
        conn.execute(
            t.update()
            .where(t.c.id == new_id)
            .values(**values, revision=revision, status="draft", approved_at=None, approved_by=None)
        )
    conn.execute(
        rev.insert().values(
            bulletin_id=new_id,
            revision=revision,
            content_hash=digest,
            content=content_of(b),
            source_file=b.source_file,
            created_at=now,
        )
    )
    stored = _from_row(conn.execute(sa.select(t).where(t.c.id == new_id)).mappings().one())
    from pipeline.store.consultations import sync_campaign  # a campaign is stored with its bulletin

    sync_campaign(conn, db, stored)
    return stored, outcome


#: Ids beyond this are no bulletin (and would overflow SQLite's and PostgreSQL's integers).
MAX_ID = 2**62


def get_bulletin(db: Database, bulletin_id: int) -> Bulletin:
    if not 0 < bulletin_id <= MAX_ID:
        raise NotFoundError(f"bulletin {bulletin_id}: no such bulletin; see `loa bulletin list`")
    t = db.table("bulletins")
    with db.begin() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == bulletin_id)).mappings().first()
    if row is None:
        raise NotFoundError(f"bulletin {bulletin_id}: no such bulletin; see `loa bulletin list`")
    return _from_row(row)


def list_bulletins(db: Database, *, status: str | None = None) -> list[Bulletin]:
    t = db.table("bulletins")
    query = sa.select(t).order_by(t.c.id)
    if status:
        query = query.where(t.c.status == status)
    with db.begin() as conn:
        return [_from_row(r) for r in conn.execute(query).mappings()]


def airable_bulletins(db: Database, day: dt.date, *, statuses: tuple[str, ...] = ("approved",)) -> list[Bulletin]:
    """Approved bulletins whose validity includes ``day`` (both ends inclusive); with
    ``statuses=("approved", "draft")`` also the drafts that would air once approved."""
    t = db.table("bulletins")
    query = (
        sa.select(t)
        .where(t.c.status.in_(statuses), t.c.valid_from <= day, t.c.valid_until >= day)
        .order_by(t.c.approved_at, t.c.id)
    )
    with db.begin() as conn:
        return [_from_row(r) for r in conn.execute(query).mappings()]


def revisions(db: Database, bulletin_id: int) -> list[dict[str, Any]]:
    rev = db.table("bulletin_revisions")
    query = sa.select(rev).where(rev.c.bulletin_id == bulletin_id).order_by(rev.c.revision)
    with db.begin() as conn:
        return [dict(r) | {"created_at": as_utc(r["created_at"])} for r in conn.execute(query).mappings()]


def approve(db: Database, bulletin_id: int, *, by: str | None = None) -> Bulletin:
    """Approve a draft; a bulletin that supersedes another (a CAP Update) ends the other one now."""
    b = get_bulletin(db, bulletin_id)
    if b.status in ("withdrawn", "superseded", "cancelled"):
        raise UsageError(
            f"bulletin {bulletin_id}: it was {b.status}; "
            "add a changed version with `loa bulletin add` to make a new draft"
        )
    if b.status == "approved":
        return b
    approved = _set(db, bulletin_id, event="bulletin.approved", status="approved", approved_at=utcnow(), approved_by=by)
    if b.supersedes is not None:
        end(db, b.supersedes, "superseded")
    return approved


def withdraw(db: Database, bulletin_id: int) -> Bulletin:
    b = get_bulletin(db, bulletin_id)
    if b.status == "withdrawn":
        return b
    return _set(db, bulletin_id, event="bulletin.withdrawn", status="withdrawn", withdrawn_at=utcnow())


def end(db: Database, bulletin_id: int, status: str) -> Bulletin:
    """Stop a bulletin airing because a newer version replaced it ("superseded") or its
    issuer cancelled it ("cancelled"); the time goes in ``withdrawn_at``. Idempotent."""
    if status not in ("superseded", "cancelled"):
        raise ValueError(status)
    b = get_bulletin(db, bulletin_id)
    if b.status in ("superseded", "cancelled", "withdrawn"):
        return b
    return _set(db, bulletin_id, event="bulletin.withdrawn", status=status, withdrawn_at=utcnow())


def _set(db: Database, bulletin_id: int, *, event: str | None = None, **values: Any) -> Bulletin:
    from pipeline.store.webhooks import record_bulletin_event  # the webhook outbox, same transaction

    t = db.table("bulletins")
    with db.begin() as conn:
        conn.execute(t.update().where(t.c.id == bulletin_id).values(**values, updated_at=utcnow()))
        if event is not None:
            row = conn.execute(sa.select(t).where(t.c.id == bulletin_id)).mappings().one()
            record_bulletin_event(conn, db, event, _from_row(row))
    return get_bulletin(db, bulletin_id)
