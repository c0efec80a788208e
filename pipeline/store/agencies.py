"""Agencies (role ``agency``): departments that submit bulletins through the API, within a scope.

An agency's scope is a list of targets it may address: ``"all"`` (the province), group ids
or commune codes. Its API tokens are stored as SHA-256, like endpoint tokens. The store
also remembers which agency submitted which bulletin and the ``Idempotency-Key`` of each
submission.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from pipeline.errors import NotFoundError, UsageError
from pipeline.store.db import Database, as_utc, utcnow
from pipeline.store.users import digest

ROLE = "agency"


@dataclass(frozen=True, slots=True)
class Agency:
    name: str
    title: str
    scope: tuple[str, ...]  # "all", group ids, commune codes
    disabled: bool = False
    role: str = ROLE


@dataclass(frozen=True, slots=True)
class AgencyToken:
    id: int
    agency: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


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


def add_agency_token(db: Database, agency: str, token: str) -> int:
    get_agency(db, agency)
    t = db.table("agency_tokens")
    with db.begin() as conn:
        result = conn.execute(t.insert().values(agency=agency, token_hash=digest(token), created_at=utcnow()))
        return int(result.inserted_primary_key[0])  # type: ignore[index]


def agency_of_token(db: Database, token: str) -> Agency | None:
    """The agency a live token belongs to (and note that it was used), or None."""
    t, a = db.table("agency_tokens"), db.table("agencies")
    with db.begin() as conn:
        row = (
            conn.execute(
                sa.select(t.c.id, a.c.name, a.c.title, a.c.scope, a.c.disabled_at)
                .join(a, a.c.name == t.c.agency)
                .where(t.c.token_hash == digest(token), t.c.revoked_at.is_(None))
            )
            .mappings()
            .first()
        )
        if row is None or row["disabled_at"] is not None:
            return None
        conn.execute(t.update().where(t.c.id == row["id"]).values(last_used_at=utcnow()))
    return Agency(name=row["name"], title=row["title"], scope=tuple(row["scope"]))


def agency_tokens(db: Database, agency: str | None = None) -> list[AgencyToken]:
    t = db.table("agency_tokens")
    query = sa.select(t).order_by(t.c.id)
    if agency:
        query = query.where(t.c.agency == agency)
    with db.begin() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        AgencyToken(
            id=r["id"],
            agency=r["agency"],
            created_at=as_utc(r["created_at"]) or utcnow(),
            last_used_at=as_utc(r["last_used_at"]),
            revoked_at=as_utc(r["revoked_at"]),
        )
        for r in rows
    ]


def revoke_agency_tokens(db: Database, agency: str, *, token_id: int | None = None) -> int:
    """Revoke one token (by id) or all live tokens of ``agency``; how many were revoked."""
    t = db.table("agency_tokens")
    query = t.update().where(t.c.agency == agency, t.c.revoked_at.is_(None))
    if token_id is not None:
        query = query.where(t.c.id == token_id)
    with db.begin() as conn:
        return int(conn.execute(query.values(revoked_at=utcnow())).rowcount)


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
