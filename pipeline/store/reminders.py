"""Reminders: users' e-mail addresses and the reminders sent (one row per event and recipient).

A row is written after its message left (an e-mail taken by the SMTP server) or, for the
webhook, in the same transaction as its outbox event; so a restarted scheduler, which reads
these rows first, never sends one twice.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from pipeline.errors import NotFoundError, UsageError
from pipeline.store import webhooks as webhook_store
from pipeline.store.db import Database, utcnow

WEBHOOK = "webhook"  # the recipient name of the webhook event of a reminder


def set_email(db: Database, user: str, email: str) -> None:
    """Set (or clear, with "") the e-mail address reminders to ``user`` go to."""
    email = email.strip()
    if email and ("@" not in email or any(ch.isspace() for ch in email) or "," in email):
        raise UsageError(f"user {user}: {email!r} is not an e-mail address", code="reminder.email")
    t = db.table("users")
    with db.begin() as conn:
        done = conn.execute(t.update().where(t.c.name == user).values(email=email or None)).rowcount
    if not done:
        raise NotFoundError(f"user {user}: no such user")


def emails(db: Database) -> dict[str, str]:
    """User name → e-mail address, for the users that have one."""
    t = db.table("users")
    with db.begin() as conn:
        rows = conn.execute(sa.select(t.c.name, t.c.email).where(t.c.email.is_not(None))).all()
    return {r.name: r.email for r in rows if r.email}


def _key(event: str, recipient: str) -> str:
    return f"{event}>{recipient}"


def sent(db: Database) -> set[tuple[str, str]]:
    """(event, recipient) of every reminder sent."""
    t = db.table("reminders_sent")
    with db.begin() as conn:
        return {(r.event, r.recipient) for r in conn.execute(sa.select(t.c.event, t.c.recipient))}


def record_sent(
    db: Database,
    *,
    event: str,
    recipient: str,
    bulletin_id: int,
    language: str,
    webhook: tuple[str, dict[str, Any]] | None = None,
    at: dt.datetime | None = None,
) -> bool:
    """Record one reminder sent (with its webhook event, same transaction); false if it already was."""
    t = db.table("reminders_sent")
    key = _key(event, recipient)
    with db.begin() as conn:
        if conn.execute(sa.select(t.c.key).where(t.c.key == key)).first() is not None:
            return False
        conn.execute(
            t.insert().values(
                key=key,
                event=event,
                recipient=recipient,
                bulletin_id=bulletin_id,
                language=language,
                sent_at=at or utcnow(),
            )
        )
        if webhook is not None:
            kind, payload = webhook
            event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"loa-reminder:{event}"))
            webhook_store.record_event(conn, db, kind, payload, event_id=event_id)
    return True


def history(db: Database, bulletin_id: int | None = None) -> list[dict[str, Any]]:
    """The reminders sent, oldest first (for ``loa reminders list``)."""
    t = db.table("reminders_sent")
    q = sa.select(t.c.event, t.c.recipient, t.c.bulletin_id, t.c.language, t.c.sent_at).order_by(t.c.sent_at)
    if bulletin_id is not None:
        q = q.where(t.c.bulletin_id == bulletin_id)
    with db.begin() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]
