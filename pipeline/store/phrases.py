"""Standard phrases recorded from the web: takes of catalog clips, awaiting approval or approved.

One row per take; at most one ``approved`` take per key (approving another makes the old
one ``replaced``) and the newest ``awaiting`` take is the one an approver hears.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from pipeline.errors import NotFoundError
from pipeline.store.db import Database, as_utc, utcnow

AWAITING, APPROVED, REPLACED = "awaiting", "approved", "replaced"


@dataclass(frozen=True, slots=True)
class PhraseTake:
    key: str  # "hmn/greeting"
    language: str
    path: Path  # under data_dir/phrases
    sha256: str
    duration_ms: int
    original_name: str
    recorded_by: str
    status: str = AWAITING
    id: int | None = None
    recorded_at: dt.datetime | None = None
    approved_by: str | None = None
    approved_at: dt.datetime | None = None


def _take(r: RowMapping) -> PhraseTake:
    return PhraseTake(
        key=r["key"],
        language=r["language"],
        path=Path(r["path"]),
        sha256=r["sha256"],
        duration_ms=r["duration_ms"],
        original_name=r["original_name"],
        recorded_by=r["recorded_by"],
        status=r["status"],
        id=r["id"],
        recorded_at=as_utc(r["recorded_at"]),
        approved_by=r["approved_by"],
        approved_at=as_utc(r["approved_at"]),
    )


def add_take(db: Database, take: PhraseTake) -> PhraseTake:
    t = db.table("phrases")
    with db.begin() as conn:
        new_id = conn.execute(
            t.insert().values(
                key=take.key,
                language=take.language,
                path=str(take.path),
                sha256=take.sha256,
                duration_ms=take.duration_ms,
                original_name=take.original_name,
                recorded_by=take.recorded_by,
                recorded_at=utcnow(),
                status=AWAITING,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        row = conn.execute(sa.select(t).where(t.c.id == new_id)).mappings().one()
    return _take(row)


def current(db: Database) -> dict[str, dict[str, PhraseTake]]:
    """key → {"approved": take, "awaiting": newest take} (either may be absent)."""
    t = db.table("phrases")
    out: dict[str, dict[str, PhraseTake]] = {}
    with db.begin() as conn:
        rows = conn.execute(sa.select(t).where(t.c.status != REPLACED).order_by(t.c.id)).mappings().all()
    for r in rows:
        out.setdefault(r["key"], {})[r["status"]] = _take(r)  # the newest of each status wins
    return out


def approved(db: Database) -> dict[str, PhraseTake]:
    return {k: v[APPROVED] for k, v in current(db).items() if APPROVED in v}


def approve_take(db: Database, key: str, *, by: str) -> PhraseTake:
    """Approve the newest take awaiting approval for ``key``; the approved one before is replaced."""
    t = db.table("phrases")
    with db.begin() as conn:
        row = (
            conn.execute(sa.select(t).where(t.c.key == key, t.c.status == AWAITING).order_by(t.c.id.desc()))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFoundError(f"phrase {key}: nothing awaits approval", code="phrase.nothing_awaiting", key=key)
        conn.execute(t.update().where(t.c.key == key, t.c.status.in_([APPROVED, AWAITING])).values(status=REPLACED))
        conn.execute(
            t.update().where(t.c.id == row["id"]).values(status=APPROVED, approved_by=by, approved_at=utcnow())
        )
        row = conn.execute(sa.select(t).where(t.c.id == row["id"])).mappings().one()
    return _take(row)
