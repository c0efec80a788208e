"""As-run receipts, stored once each: a second receipt with the same id is a replay and is refused."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from pipeline.broadcast.receipts import Receipt, ReplayedReceiptError, parse, to_document
from pipeline.store.db import Database, as_utc, utcnow


def program_day(program: str, issued_at: dt.datetime, tz: dt.tzinfo) -> dt.date:
    """The date a receipt counts for: the program id's date, else the local day it was issued."""
    parts = program.split("/")
    if len(parts) == 3:
        try:
            return dt.date.fromisoformat(parts[1])
        except ValueError:
            pass
    return issued_at.astimezone(tz).date()


def save_receipt(db: Database, r: Receipt, *, tz: ZoneInfo, received_at: dt.datetime | None = None) -> None:
    """Store a verified receipt; ``ReceiptError`` if its id was seen before (a replay)."""
    t = db.table("receipts")
    doc = r.extra.get("document") or to_document(r)
    try:
        with db.engine.begin() as conn:
            conn.execute(
                t.insert().values(
                    id=r.id,
                    endpoint=r.endpoint,
                    commune=r.commune,
                    source=r.source,
                    program=r.program,
                    day=program_day(r.program, r.issued_at, tz),
                    completed=r.completed,
                    issued_at=r.issued_at.astimezone(dt.UTC),
                    received_at=received_at or utcnow(),
                    document=doc,
                )
            )
    except IntegrityError as exc:
        raise ReplayedReceiptError(
            f"receipt {r.id} from {r.endpoint}: already received; a receipt id is used once (replay refused)"
        ) from exc


def stored_mac(db: Database, receipt_id: str) -> str | None:
    """The MAC of the stored receipt with this id, or None if there is none."""
    t = db.table("receipts")
    with db.begin() as conn:
        doc = conn.execute(sa.select(t.c.document).where(t.c.id == receipt_id)).scalar()
    return None if doc is None else str(doc.get("mac", ""))


def receipts_between(db: Database, start: dt.date, end: dt.date) -> list[Receipt]:
    """Receipts whose program day is in ``[start, end]``, oldest first."""
    t = db.table("receipts")
    query = sa.select(t.c.document).where(t.c.day >= start, t.c.day <= end).order_by(t.c.issued_at, t.c.id)
    with db.begin() as conn:
        return [parse(doc, where="stored receipt") for doc in conn.execute(query).scalars()]


def last_receipt_at(db: Database) -> dict[str, dt.datetime]:
    """Endpoint → when its latest receipt arrived."""
    t = db.table("receipts")
    query = sa.select(t.c.endpoint, sa.func.max(t.c.received_at)).group_by(t.c.endpoint)
    with db.begin() as conn:
        return {str(e): as_utc(at) or utcnow() for e, at in conn.execute(query)}


def count_receipts(db: Database) -> int:
    t = db.table("receipts")
    with db.begin() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
