"""CAP messages seen (for duplicates and out-of-order alerts) and the bulletins they made."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from pipeline.models import Bulletin
from pipeline.store.bulletins import _from_row
from pipeline.store.db import Database, as_utc, utcnow


@dataclass(frozen=True, slots=True)
class CapMessage:
    sender: str
    identifier: str
    sent: dt.datetime
    msg_type: str  # Alert | Update | Cancel
    refs: tuple[str, ...]  # "sender,identifier,sent"
    outcome: str
    sha256: str
    bulletin_id: int | None = None
    received_at: dt.datetime | None = None

    @property
    def ref_keys(self) -> set[tuple[str, str]]:
        return {(r.split(",")[0], r.split(",")[1]) for r in self.refs}


def _message(row: RowMapping) -> CapMessage:
    return CapMessage(
        sender=row["sender"],
        identifier=row["identifier"],
        sent=as_utc(row["sent"]) or utcnow(),
        msg_type=row["msg_type"],
        refs=tuple(row["refs"]),
        outcome=row["outcome"],
        sha256=row["sha256"],
        bulletin_id=row["bulletin_id"],
        received_at=as_utc(row["received_at"]),
    )


def find_message(db: Database, sender: str, identifier: str) -> CapMessage | None:
    t = db.table("cap_messages")
    with db.begin() as conn:
        row = conn.execute(sa.select(t).where(t.c.sender == sender, t.c.identifier == identifier)).mappings().first()
    return _message(row) if row else None


def messages(db: Database) -> list[CapMessage]:
    t = db.table("cap_messages")
    with db.begin() as conn:
        return [_message(r) for r in conn.execute(sa.select(t).order_by(t.c.id)).mappings()]


def bulletin_by_cap(db: Database, sender: str, identifier: str) -> Bulletin | None:
    t = db.table("bulletins")
    query = sa.select(t).where(t.c.cap_sender == sender, t.c.cap_identifier == identifier)
    with db.begin() as conn:
        row = conn.execute(query).mappings().first()
    return _from_row(row) if row else None


def successor_of(db: Database, bulletin_id: int) -> Bulletin | None:
    """The newest bulletin that supersedes ``bulletin_id`` (a CAP Update of it), if any."""
    t = db.table("bulletins")
    query = sa.select(t).where(t.c.supersedes == bulletin_id).order_by(t.c.id.desc())
    with db.begin() as conn:
        row = conn.execute(query).mappings().first()
    return _from_row(row) if row else None


def title_taken(db: Database, title: str, source: str) -> bool:
    t = db.table("bulletins")
    with db.begin() as conn:
        return conn.execute(sa.select(t.c.id).where(t.c.title == title, t.c.source == source)).first() is not None


def note_in(conn: Connection, db: Database, message: CapMessage) -> None:
    """Remember a CAP message inside the caller's transaction (its identifier makes imports idempotent)."""
    conn.execute(
        db.table("cap_messages")
        .insert()
        .values(
            sender=message.sender,
            identifier=message.identifier,
            sent=message.sent.astimezone(dt.UTC),  # SQLite keeps no offset
            msg_type=message.msg_type,
            refs=list(message.refs),
            bulletin_id=message.bulletin_id,
            outcome=message.outcome,
            sha256=message.sha256,
            received_at=utcnow(),
        )
    )


def find_in(conn: Connection, db: Database, sender: str, identifier: str) -> CapMessage | None:
    t = db.table("cap_messages")
    row = conn.execute(sa.select(t).where(t.c.sender == sender, t.c.identifier == identifier)).mappings().first()
    return _message(row) if row else None


def cancels_in(conn: Connection, db: Database) -> list[CapMessage]:
    """Every Cancel message seen (kept ones too: they cancel an alert that has not come yet)."""
    t = db.table("cap_messages")
    return [_message(r) for r in conn.execute(sa.select(t).where(t.c.msg_type == "Cancel")).mappings()]
