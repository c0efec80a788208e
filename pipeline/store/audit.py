"""The audit log: who did what, when, to what. Append-only (a trigger refuses UPDATE and DELETE)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.store.db import Database, as_utc, utcnow

#: What the log records (the web shows each in Vietnamese).
ACTIONS = (
    "bulletin.added",
    "bulletin.revised",
    "bulletin.approved",
    "bulletin.withdrawn",
    "bulletin.dispatched",
    "bulletin.back_to_draft",
    "bulletin.cancelled",
    "bulletin.superseded",
    "bulletin.expired",
    "bulletin.decided",
    "recording.added",
    "recording.replaced",
    "recording.removed",
    "recording.refused",
    "agency.token.issued",
    "agency.token.revoked",
    "report.played",
    "report.problem",
    "consultation.moderated",
    "user.added",
    "user.changed",
    "user.disabled",
    "user.enabled",
    "user.password",
    "user.unlocked",
    "token.issued",
    "token.revoked",
    "login.ok",
    "login.failed",
    "login.locked",
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    detail: str
    client: str | None


def record(db: Database, actor: str, action: str, target: str, detail: str = "", *, client: str | None = None) -> None:
    """Append one entry (``actor`` is a user name, ``cli`` or ``system``)."""
    t = db.table("audit_log")
    with db.begin() as conn:
        conn.execute(
            t.insert().values(at=utcnow(), actor=actor, action=action, target=target, detail=detail, client=client)
        )


def record_in(
    conn: Connection,
    db: Database,
    actor: str,
    action: str,
    target: str,
    detail: str = "",
    *,
    client: str | None = None,
) -> None:
    """``record`` inside the caller's transaction: the entry commits (or not) with the action."""
    conn.execute(
        db.table("audit_log")
        .insert()
        .values(at=utcnow(), actor=actor, action=action, target=target, detail=detail, client=client)
    )


def entries(
    db: Database,
    *,
    action: str | None = None,
    actor: str | None = None,
    since: dt.datetime | None = None,
    limit: int | None = 500,
) -> list[AuditEntry]:
    """Newest first."""
    t = db.table("audit_log")
    query = sa.select(t).order_by(t.c.id.desc())
    if action:
        query = query.where(t.c.action.startswith(action))
    if actor:
        query = query.where(t.c.actor == actor)
    if since:
        query = query.where(t.c.at >= since)
    if limit:
        query = query.limit(limit)
    with db.begin() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        AuditEntry(
            id=r["id"],
            at=as_utc(r["at"]) or utcnow(),
            actor=r["actor"],
            action=r["action"],
            target=r["target"],
            detail=r["detail"],
            client=r["client"],
        )
        for r in rows
    ]
