"""Operator decisions on normal bulletins: one per bulletin and commune, the latest wins."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from pipeline.models import Decision
from pipeline.store.db import Database, as_utc, utcnow


def _decision(row: RowMapping) -> Decision:
    return Decision(
        bulletin_id=row["bulletin_id"],
        commune=row["commune"],
        decision=row["decision"],
        until=row["until"],
        reason=row["reason"],
        by=row["by"],
        decided_at=as_utc(row["decided_at"]),
    )


def save_decision(db: Database, d: Decision) -> Decision:
    """Store ``d``, replacing the commune's earlier decision on the same bulletin."""
    with db.begin() as conn:
        return save_in(conn, db, d)


def save_in(conn: Connection, db: Database, d: Decision) -> Decision:
    """``save_decision`` inside the caller's transaction."""
    t = db.table("bulletin_decisions")
    values = {"decision": d.decision, "until": d.until, "reason": d.reason, "by": d.by, "decided_at": utcnow()}
    where = (t.c.bulletin_id == d.bulletin_id, t.c.commune == d.commune)
    if conn.execute(t.update().where(*where).values(**values)).rowcount == 0:
        conn.execute(t.insert().values(bulletin_id=d.bulletin_id, commune=d.commune, **values))
    return _decision(conn.execute(sa.select(t).where(*where)).mappings().one())


def decisions(db: Database, bulletin_ids: Iterable[int] | None = None) -> dict[tuple[int, str], Decision]:
    """Decisions keyed by (bulletin id, commune code): all, or those on ``bulletin_ids``."""
    t = db.table("bulletin_decisions")
    query = sa.select(t).order_by(t.c.id)
    if bulletin_ids is not None:
        query = query.where(t.c.bulletin_id.in_(list(bulletin_ids)))
    with db.begin() as conn:
        return {(r["bulletin_id"], r["commune"]): _decision(r) for r in conn.execute(query).mappings()}
