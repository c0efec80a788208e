"""Runs of the job, programs built, segments known, and every delivery attempt."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from pipeline.models import Delivery, Program, Segment
from pipeline.store.db import Database, as_utc, utcnow


def start_run(db: Database, kind: str, day: dt.date | None) -> int:
    t = db.table("runs")
    with db.begin() as conn:
        result = conn.execute(
            t.insert().values(kind=kind, date=day, status="running", started_at=utcnow(), counts={}, failures=[])
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]


def finish_run(db: Database, run_id: int, *, status: str, counts: dict[str, Any], failures: list[Any]) -> None:
    t = db.table("runs")
    with db.begin() as conn:
        conn.execute(
            t.update()
            .where(t.c.id == run_id)
            .values(status=status, finished_at=utcnow(), counts=counts, failures=failures)
        )


def recent_runs(db: Database, limit: int | None = 20, *, kind: str | None = None) -> list[dict[str, Any]]:
    """Runs, newest first; only those of ``kind`` if given."""
    t = db.table("runs")
    query = sa.select(t).order_by(t.c.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(t.c.kind == kind)
    with db.begin() as conn:
        rows = conn.execute(query).mappings().all()
    return [dict(r) | {"started_at": as_utc(r["started_at"]), "finished_at": as_utc(r["finished_at"])} for r in rows]


def record_segments(db: Database, segments: Iterable[Segment]) -> None:
    """Remember segments (the first sighting wins; content-addressed keys never change)."""
    t = db.table("segments")
    unique = {s.key: s for s in segments}
    if not unique:
        return
    with db.begin() as conn:
        known = set(conn.execute(sa.select(t.c.key).where(t.c.key.in_(list(unique)))).scalars())
        rows = [
            {
                "key": s.key,
                "kind": s.kind,
                "language": s.language,
                "title": s.title,
                "duration_ms": s.duration_ms,
                "bytes": s.bytes,
                "sha256": s.sha256,
                "engine": s.engine,
                "loudness_lufs": s.loudness_lufs,
                "bulletin_id": s.bulletin_id,
                "created_at": utcnow(),
            }
            for key, s in unique.items()
            if key not in known
        ]
        if rows:
            conn.execute(t.insert(), rows)


def record_program(db: Database, program: Program) -> None:
    t = db.table("programs")
    values = {
        "commune": program.commune,
        "date": program.date,
        "slot": program.slot,
        "kind": program.kind,
        "priority": program.priority,
        "duration_ms": program.duration_ms,
        "items": [s.key for s in program.items],
        "missing": list(program.missing),
        "built_at": utcnow(),
    }
    with db.begin() as conn:
        if conn.execute(sa.select(t.c.id).where(t.c.id == program.id)).first():
            conn.execute(t.update().where(t.c.id == program.id).values(**values))
        else:
            conn.execute(t.insert().values(id=program.id, **values))


def programs_on(db: Database, day: dt.date) -> list[dict[str, Any]]:
    t = db.table("programs")
    with db.begin() as conn:
        return [dict(r) for r in conn.execute(sa.select(t).where(t.c.date == day).order_by(t.c.id)).mappings()]


def record_delivery(db: Database, d: Delivery, *, run_id: int | None = None) -> None:
    t = db.table("deliveries")
    with db.begin() as conn:
        conn.execute(
            t.insert().values(
                run_id=run_id,
                endpoint=d.endpoint,
                commune=d.commune,
                program=d.program,
                status=d.status,
                attempts=d.attempts,
                files_sent=d.files_sent,
                files_skipped=d.files_skipped,
                bytes_sent=d.bytes_sent,
                seconds=d.seconds,
                error=d.error,
                finished_at=d.finished_at or utcnow(),
            )
        )


def latest_deliveries(db: Database, program: str) -> list[Delivery]:
    """The last recorded attempt for each endpoint of ``program`` (e.g. a date "2026-12-01")."""
    t = db.table("deliveries")
    last = sa.select(sa.func.max(t.c.id).label("id")).where(t.c.program == program).group_by(t.c.endpoint).subquery()
    query = sa.select(t).join(last, t.c.id == last.c.id).order_by(t.c.commune, t.c.endpoint)
    with db.begin() as conn:
        return [
            Delivery(
                endpoint=r["endpoint"],
                commune=r["commune"],
                program=r["program"],
                status=r["status"],
                attempts=r["attempts"],
                files_sent=r["files_sent"],
                files_skipped=r["files_skipped"],
                bytes_sent=r["bytes_sent"],
                seconds=r["seconds"],
                error=r["error"],
                finished_at=as_utc(r["finished_at"]),
            )
            for r in conn.execute(query).mappings()
        ]
