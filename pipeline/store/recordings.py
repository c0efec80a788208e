"""Recordings attached to bulletins, one current recording per bulletin and language."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from pipeline.models import Recording
from pipeline.store.db import Database, as_utc, utcnow


def _from_row(row: RowMapping) -> Recording:
    return Recording(
        id=row["id"],
        bulletin_id=row["bulletin_id"],
        language=row["language"],
        path=Path(row["path"]),
        duration_ms=row["duration_ms"],
        sha256=row["sha256"],
        original_name=row["original_name"],
        codec=row["codec"],
        sample_rate=row["sample_rate"],
        channels=row["channels"],
        created_at=as_utc(row["created_at"]),
        transcript=row.get("transcript") or "",
    )


def save_recording(db: Database, rec: Recording) -> tuple[Recording, str]:
    """Attach ``rec``; the previous recording for that language is kept but superseded.

    Returns the stored recording and ``added``, ``replaced`` or ``unchanged``.
    """
    with db.begin() as conn:
        return save_in(conn, db, rec)


def save_in(conn: Connection, db: Database, rec: Recording) -> tuple[Recording, str]:
    """``save_recording`` inside the caller's transaction."""
    t = db.table("recordings")
    now = utcnow()
    current = (
        conn.execute(
            sa.select(t).where(
                t.c.bulletin_id == rec.bulletin_id,
                t.c.language == rec.language,
                t.c.superseded_at.is_(None),
            )
        )
        .mappings()
        .first()
    )
    if current is not None and current["sha256"] == rec.sha256:
        if rec.transcript and rec.transcript != (current.get("transcript") or ""):  # the same audio, its text typed
            conn.execute(t.update().where(t.c.id == current["id"]).values(transcript=rec.transcript))
            current = conn.execute(sa.select(t).where(t.c.id == current["id"])).mappings().one()
        return _from_row(current), "unchanged"
    if current is not None:
        conn.execute(t.update().where(t.c.id == current["id"]).values(superseded_at=now))
    new_id = conn.execute(
        t.insert().values(
            bulletin_id=rec.bulletin_id,
            language=rec.language,
            path=str(rec.path),
            duration_ms=rec.duration_ms,
            sha256=rec.sha256,
            original_name=rec.original_name,
            codec=rec.codec,
            sample_rate=rec.sample_rate,
            channels=rec.channels,
            created_at=now,
            transcript=rec.transcript or None,
        )
    ).inserted_primary_key[0]  # type: ignore[index]
    row = conn.execute(sa.select(t).where(t.c.id == new_id)).mappings().one()
    return _from_row(row), "replaced" if current is not None else "added"


def remove_in(conn: Connection, db: Database, bulletin_id: int, language: str) -> Recording | None:
    """Retire the current recording of (bulletin, language); it is kept, superseded. The one removed."""
    t = db.table("recordings")
    where = (t.c.bulletin_id == bulletin_id, t.c.language == language, t.c.superseded_at.is_(None))
    row = conn.execute(sa.select(t).where(*where)).mappings().first()
    if row is None:
        return None
    conn.execute(t.update().where(t.c.id == row["id"]).values(superseded_at=utcnow()))
    return _from_row(row)


def current_in(conn: Connection, db: Database, bulletin_id: int) -> dict[str, Recording]:
    """The current recording per language of one bulletin, inside the caller's transaction."""
    t = db.table("recordings")
    query = sa.select(t).where(t.c.superseded_at.is_(None), t.c.bulletin_id == bulletin_id)
    return {r["language"]: _from_row(r) for r in conn.execute(query).mappings()}


def current_recordings(db: Database, bulletin_ids: list[int] | None = None) -> dict[tuple[int, str], Recording]:
    """The current recording of each (bulletin, language)."""
    t = db.table("recordings")
    query = sa.select(t).where(t.c.superseded_at.is_(None))
    if bulletin_ids is not None:
        query = query.where(t.c.bulletin_id.in_(bulletin_ids))
    with db.begin() as conn:
        return {(r["bulletin_id"], r["language"]): _from_row(r) for r in conn.execute(query).mappings()}
