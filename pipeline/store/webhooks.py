"""The webhook outbox: events recorded with the change that caused them, deliveries per URL.

An event is written in the same transaction as the approval or withdrawal it describes, so
none is lost to a crash; each (event, URL) pair has one delivery row, claimed for a short
lease before sending and marked delivered after a 2xx, so a retry sends the same event id
and a receiver that dedupes by id sees it once.
"""

from __future__ import annotations

import datetime as dt
import typing
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.config import WebhookEvent
from pipeline.models import Bulletin
from pipeline.store.db import Database, as_utc, utcnow

EVENT_KINDS: tuple[str, ...] = typing.get_args(WebhookEvent)
DELIVERY_STATUSES = ("pending", "delivered", "failed")


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    kind: str
    payload: dict[str, Any]
    created_at: dt.datetime

    def body(self) -> dict[str, Any]:
        """The JSON document sent to every URL."""
        return {"id": self.id, "type": self.kind, "created_at": self.created_at.isoformat(), "data": self.payload}


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    id: int
    event: Event
    url: str
    status: str  # one of DELIVERY_STATUSES
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    response_status: int | None
    delivered_at: dt.datetime | None


def bulletin_payload(b: Bulletin) -> dict[str, Any]:
    return {
        "bulletin": {
            "id": b.id,
            "title": b.title,
            "source": b.source,
            "reference": b.reference,
            "category": b.category,
            "priority": b.priority,
            "revision": b.revision,
            "status": b.status,
            "valid_from": b.valid_from.isoformat(),
            "valid_until": b.valid_until.isoformat(),
            "targets": list(b.targets),
            "languages": list(b.languages),
        }
    }


def record_event(conn: Connection, db: Database, kind: str, payload: dict[str, Any], *, event_id: str = "") -> str:
    """Add an event inside the caller's transaction; an ``event_id`` already recorded is a no-op."""
    t = db.table("webhook_events")
    event_id = event_id or str(uuid.uuid4())
    if conn.execute(sa.select(t.c.id).where(t.c.id == event_id)).first() is None:
        conn.execute(t.insert().values(id=event_id, kind=kind, payload=payload, created_at=utcnow()))
    return event_id


def record_bulletin_event(conn: Connection, db: Database, kind: str, b: Bulletin) -> str | None:
    """The approval or withdrawal of a public bulletin (internal ones are never announced)."""
    if not b.public:
        return None
    return record_event(conn, db, kind, bulletin_payload(b))


def add_event(db: Database, kind: str, payload: dict[str, Any], *, event_id: str = "") -> str:
    with db.begin() as conn:
        return record_event(conn, db, kind, payload, event_id=event_id)


def fan_out(db: Database, targets: list[tuple[str, tuple[str, ...]]], *, since: dt.datetime) -> int:
    """One pending delivery per (event of a wanted kind since ``since``, URL) that has none yet.

    ``targets`` are (URL, event kinds it wants). Returns how many deliveries were added. A
    ``program.aired`` event is recorded when its program is delivered, usually hours before
    its slot: its deliveries are due at the program's start, the moment the public archive
    starts showing it as aired (``pipeline/publish/catalog.py``: ``start <= now``).
    """
    ev, d = db.table("webhook_events"), db.table("webhook_deliveries")
    now = utcnow()
    added = 0
    with db.begin() as conn:
        events = conn.execute(sa.select(ev.c.id, ev.c.kind, ev.c.payload).where(ev.c.created_at >= since)).all()
        if not events or not targets:
            return 0
        have = {
            (r.event_id, r.url)
            for r in conn.execute(sa.select(d.c.event_id, d.c.url).where(d.c.event_id.in_([e.id for e in events])))
        }
        for event in events:
            for url, kinds in targets:
                if event.kind in kinds and (event.id, url) not in have:
                    conn.execute(
                        d.insert().values(
                            event_id=event.id,
                            url=url,
                            status="pending",
                            attempts=0,
                            next_attempt_at=max(now, due_at(event.kind, event.payload) or now),
                            updated_at=now,
                        )
                    )
                    added += 1
    return added


def due_at(kind: str, payload: dict[str, Any]) -> dt.datetime | None:
    """When an event may be sent at the earliest: a ``program.aired`` at its program's start."""
    if kind != "program.aired":
        return None
    try:
        start = dt.datetime.fromisoformat(str(payload["program"]["start"]))
    except (KeyError, TypeError, ValueError):
        return None
    return start.astimezone(dt.UTC) if start.tzinfo is not None else None


def _event(row: Any) -> Event:
    return Event(
        id=row["event_id"], kind=row["kind"], payload=row["payload"], created_at=as_utc(row["created_at"]) or utcnow()
    )


def _delivery(row: Any) -> WebhookDelivery:
    return WebhookDelivery(
        id=row["id"],
        event=_event(row),
        url=row["url"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=as_utc(row["next_attempt_at"]) or utcnow(),
        last_error=row["last_error"],
        response_status=row["response_status"],
        delivered_at=as_utc(row["delivered_at"]),
    )


def _joined(db: Database) -> sa.Select[Any]:
    ev, d = db.table("webhook_events"), db.table("webhook_deliveries")
    return sa.select(d, ev.c.kind, ev.c.payload, ev.c.created_at).join(ev, ev.c.id == d.c.event_id)


def claim_due(db: Database, *, lease: dt.timedelta, limit: int = 100) -> list[WebhookDelivery]:
    """Pending deliveries that are due and not claimed by another worker; claimed for ``lease``."""
    d = db.table("webhook_deliveries")
    now = utcnow()
    claimed: list[WebhookDelivery] = []
    with db.begin() as conn:
        rows = (
            conn.execute(
                _joined(db)
                .where(
                    d.c.status == "pending",
                    d.c.next_attempt_at <= now,
                    sa.or_(d.c.claimed_until.is_(None), d.c.claimed_until < now),
                )
                .order_by(d.c.id)
                .limit(limit)
            )
            .mappings()
            .all()
        )
        for row in rows:
            won = conn.execute(
                d.update()
                .where(
                    d.c.id == row["id"],
                    d.c.status == "pending",
                    d.c.attempts == row["attempts"],
                    sa.or_(d.c.claimed_until.is_(None), d.c.claimed_until < now),
                )
                .values(claimed_until=now + lease, updated_at=now)
            ).rowcount
            if won:
                claimed.append(_delivery(row))
    return claimed


def mark_delivered(db: Database, delivery_id: int, *, response_status: int) -> None:
    d = db.table("webhook_deliveries")
    now = utcnow()
    with db.begin() as conn:
        conn.execute(
            d.update()
            .where(d.c.id == delivery_id)
            .values(
                status="delivered",
                attempts=d.c.attempts + 1,
                delivered_at=now,
                response_status=response_status,
                last_error=None,
                claimed_until=None,
                updated_at=now,
            )
        )


def mark_attempt_failed(
    db: Database, delivery_id: int, *, error: str, response_status: int | None, retry_at: dt.datetime | None
) -> None:
    """One more failed attempt: pending again at ``retry_at``, or failed for good when it is None."""
    d = db.table("webhook_deliveries")
    now = utcnow()
    with db.begin() as conn:
        conn.execute(
            d.update()
            .where(d.c.id == delivery_id)
            .values(
                status="pending" if retry_at is not None else "failed",
                attempts=d.c.attempts + 1,
                next_attempt_at=retry_at or now,
                last_error=error[:1000],
                response_status=response_status,
                claimed_until=None,
                updated_at=now,
            )
        )


def list_deliveries(db: Database, *, limit: int = 200) -> list[WebhookDelivery]:
    d = db.table("webhook_deliveries")
    with db.begin() as conn:
        rows = conn.execute(_joined(db).order_by(d.c.id.desc()).limit(limit)).mappings().all()
    return [_delivery(r) for r in rows]


def list_events(db: Database, *, kind: str | None = None) -> list[Event]:
    ev = db.table("webhook_events")
    query = sa.select(ev.c.id.label("event_id"), ev.c.kind, ev.c.payload, ev.c.created_at).order_by(ev.c.created_at)
    if kind:
        query = query.where(ev.c.kind == kind)
    with db.begin() as conn:
        return [_event(r) for r in conn.execute(query).mappings()]
