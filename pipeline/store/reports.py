"""Read-only queries for reconcile and statistics: programs, their segments, deliveries, contacts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from pipeline.models import Delivery
from pipeline.store import tokens
from pipeline.store.db import Database, as_utc
from pipeline.store.runs import delivery_of


@dataclass(frozen=True, slots=True)
class BuiltProgram:
    id: str
    commune: str
    date: dt.date
    slot: str
    kind: str
    items: tuple[str, ...]  # segment keys, in order
    built_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    key: str
    sha256: str
    bulletin_id: int | None
    language: str
    duration_ms: int
    kind: str = ""  # the cue kind: speech | pause | clip | chime | recording
    title: str = ""  # a clip's: "Tiếng Mông: hmn/greeting"


def programs_between(db: Database, start: dt.date, end: dt.date) -> list[BuiltProgram]:
    t = db.table("programs")
    query = sa.select(t).where(t.c.date >= start, t.c.date <= end).order_by(t.c.date, t.c.commune, t.c.id)
    with db.begin() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        BuiltProgram(
            id=r["id"],
            commune=r["commune"],
            date=r["date"],
            slot=r["slot"],
            kind=r["kind"],
            items=tuple(r["items"]),
            built_at=as_utc(r["built_at"]) or dt.datetime.min.replace(tzinfo=dt.UTC),
        )
        for r in rows
    ]


def segments_of(db: Database, keys: Iterable[str]) -> dict[str, SegmentInfo]:
    t = db.table("segments")
    wanted = sorted(set(keys))
    out: dict[str, SegmentInfo] = {}
    with db.begin() as conn:
        for i in range(0, len(wanted), 500):
            query = sa.select(t).where(t.c.key.in_(wanted[i : i + 500]))
            for r in conn.execute(query).mappings():
                out[r["key"]] = SegmentInfo(
                    r["key"], r["sha256"], r["bulletin_id"], r["language"], r["duration_ms"], r["kind"], r["title"]
                )
    return out


def deliveries_for(db: Database, labels: Iterable[str]) -> list[Delivery]:
    """Every recorded attempt for the given labels (a date "2026-12-01" or "emergency/<id>"), oldest first."""
    t = db.table("deliveries")
    query = sa.select(t).where(t.c.program.in_(sorted(set(labels)))).order_by(t.c.id)
    with db.begin() as conn:
        return [delivery_of(r) for r in conn.execute(query).mappings()]


def last_push_at(db: Database) -> dict[str, dt.datetime]:
    """Endpoint → the end of its latest successful push."""
    t = db.table("deliveries")
    query = (
        sa.select(t.c.endpoint, sa.func.max(t.c.finished_at)).where(t.c.status == "delivered").group_by(t.c.endpoint)
    )
    with db.begin() as conn:
        return {str(e): at for e, v in conn.execute(query) if (at := as_utc(v)) is not None}


def last_pull_at(db: Database) -> dict[str, dt.datetime]:
    """Endpoint → the last time one of its bearer tokens was used (the pull API)."""
    return tokens.last_used(db, "endpoint")
