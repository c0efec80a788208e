"""Agencies (role ``agency``): departments that submit bulletins through the API, within a scope.

An agency's scope is a list of targets it may address: ``"all"`` (the province), group ids
or commune codes. Its API tokens live in the one token store (``pipeline.store.tokens``). The store
also remembers which agency submitted which bulletin and the ``Idempotency-Key`` of each
submission.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from pipeline.errors import NotFoundError, UsageError
from pipeline.store import tokens
from pipeline.store.db import Database, utcnow

ROLE = "agency"


@dataclass(frozen=True, slots=True)
class Agency:
    name: str
    title: str
    scope: tuple[str, ...]  # "all", group ids, commune codes
    disabled: bool = False
    role: str = ROLE


def add_agency(db: Database, name: str, *, title: str, scope: tuple[str, ...]) -> Agency:
    if not scope:
        raise UsageError(f"agency {name}: give at least one --scope (all, a group id or a commune code)")
    t = db.table("agencies")
    try:
        with db.engine.begin() as conn:
            conn.execute(t.insert().values(name=name, title=title, scope=list(scope), created_at=utcnow()))
    except IntegrityError as exc:
        raise UsageError(f"agency {name}: already exists; choose another name") from exc
    return get_agency(db, name)


def get_agency(db: Database, name: str) -> Agency:
    t = db.table("agencies")
    with db.begin() as conn:
        row = conn.execute(sa.select(t).where(t.c.name == name)).mappings().first()
    if row is None:
        raise NotFoundError(f"agency {name}: no such agency; see `loa agency list`")
    return Agency(
        name=row["name"], title=row["title"], scope=tuple(row["scope"]), disabled=row["disabled_at"] is not None
    )


def list_agencies(db: Database) -> list[Agency]:
    t = db.table("agencies")
    with db.begin() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.name)).mappings().all()
    return [
        Agency(name=r["name"], title=r["title"], scope=tuple(r["scope"]), disabled=r["disabled_at"] is not None)
        for r in rows
    ]


def set_disabled(db: Database, name: str, disabled: bool, *, by: str) -> Agency:
    """Disable an agency (its tokens stop working at once, and stay so until it is enabled) or
    enable it again; ``by`` gets an audit entry in the same transaction when anything changed."""
    from pipeline.store.audit import record_in

    t = db.table("agencies")
    with db.begin() as conn:
        row = conn.execute(sa.select(t.c.disabled_at).where(t.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"agency {name}: no such agency; see `loa agency list`")
        if (row[0] is not None) != disabled:
            conn.execute(t.update().where(t.c.name == name).values(disabled_at=utcnow() if disabled else None))
            record_in(conn, db, by, "agency.disabled" if disabled else "agency.enabled", f"agency:{name}", "")
    return get_agency(db, name)


def agency_of_token(db: Database, token: str) -> Agency | None:
    """The enabled agency a live token belongs to (its use is noted), or None."""
    name = tokens.owner_of_token(db, "agency", token)
    if name is None:
        return None
    try:
        agency = get_agency(db, name)
    except NotFoundError:
        return None
    return None if agency.disabled else agency


# --- what an agency submitted -----------------------------------------------------


def set_owner(db: Database, bulletin_id: int, agency: str) -> None:
    t = db.table("agency_bulletins")
    with db.begin() as conn:
        if conn.execute(sa.select(t.c.bulletin_id).where(t.c.bulletin_id == bulletin_id)).first() is None:
            conn.execute(t.insert().values(bulletin_id=bulletin_id, agency=agency, created_at=utcnow()))


def owner_of(db: Database, bulletin_id: int) -> str | None:
    t = db.table("agency_bulletins")
    with db.begin() as conn:
        value = conn.execute(sa.select(t.c.agency).where(t.c.bulletin_id == bulletin_id)).scalar()
    return None if value is None else str(value)


def idempotent_bulletin(db: Database, agency: str, key: str) -> tuple[int, str] | None:
    """(bulletin id, request sha256) stored for ``key``, or None."""
    t = db.table("idempotency_keys")
    with db.begin() as conn:
        row = conn.execute(sa.select(t).where(t.c.agency == agency, t.c.key == key)).mappings().first()
    return None if row is None else (int(row["bulletin_id"]), str(row["request_sha256"]))


def remember_key(db: Database, agency: str, key: str, *, bulletin_id: int, request_sha256: str) -> tuple[int, str]:
    """Store ``key`` → bulletin; if another request stored it first, return what that one stored."""
    t = db.table("idempotency_keys")
    try:
        with db.engine.begin() as conn:
            conn.execute(
                t.insert().values(
                    agency=agency, key=key, bulletin_id=bulletin_id, request_sha256=request_sha256, created_at=utcnow()
                )
            )
    except IntegrityError:
        found = idempotent_bulletin(db, agency, key)
        if found is not None:
            return found
        raise
    return bulletin_id, request_sha256


def owner_in(conn: Connection, db: Database, bulletin_id: int) -> str | None:
    t = db.table("agency_bulletins")
    value = conn.execute(sa.select(t.c.agency).where(t.c.bulletin_id == bulletin_id)).scalar()
    return None if value is None else str(value)


def set_owner_in(conn: Connection, db: Database, bulletin_id: int, agency: str) -> None:
    """``set_owner`` inside the caller's transaction."""
    if owner_in(conn, db, bulletin_id) is None:
        conn.execute(
            db.table("agency_bulletins").insert().values(bulletin_id=bulletin_id, agency=agency, created_at=utcnow())
        )


def key_in(conn: Connection, db: Database, agency: str, key: str) -> tuple[int, str] | None:
    """(bulletin id, request sha256) stored for ``key``, read inside the caller's transaction."""
    t = db.table("idempotency_keys")
    row = conn.execute(sa.select(t).where(t.c.agency == agency, t.c.key == key)).mappings().first()
    return None if row is None else (int(row["bulletin_id"]), str(row["request_sha256"]))


def remember_key_in(
    conn: Connection, db: Database, agency: str, key: str, *, bulletin_id: int, request_sha256: str
) -> None:
    """Store ``key`` → bulletin inside the caller's transaction (the save it names commits with it)."""
    conn.execute(
        db.table("idempotency_keys")
        .insert()
        .values(agency=agency, key=key, bulletin_id=bulletin_id, request_sha256=request_sha256, created_at=utcnow())
    )
