"""Bearer tokens, one store for every holder: endpoints (the pull API) and agencies (the agency API).

A token is 32 random bytes, URL-safe; it is shown once, when created, and the store keeps only its
SHA-256. Each row says whose it is (``kind`` and ``owner``: an endpoint name or an agency name),
when it was created, last used and revoked. Checking a token notes its use.

    create_endpoint_token(db, "y-ty-1")  -> the token (shown once)
    create_agency_token(db, "so-yte")    -> (id, the token)
    owner_of_token(db, "endpoint", tok)  -> "y-ty-1" | None
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.errors import NotFoundError
from pipeline.store.db import Database, as_utc, utcnow
from pipeline.store.users import digest

Kind = Literal["endpoint", "agency"]
KINDS: tuple[Kind, ...] = ("endpoint", "agency")
TABLE = "api_tokens"


@dataclass(frozen=True, slots=True)
class Token:
    id: int
    kind: Kind
    owner: str  # an endpoint's name or an agency's name
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


def new_secret() -> str:
    """A fresh bearer token: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


def add_token(db: Database, kind: Kind, owner: str, secret: str, *, by: str | None = None) -> int:
    """Store ``secret`` (hashed) for ``owner``; its id. Callers that need a new secret use create_*.

    ``by`` (who issues it) gets an audit entry in the same transaction.
    """
    t = db.table(TABLE)
    with db.begin() as conn:
        result = conn.execute(t.insert().values(kind=kind, owner=owner, token_hash=digest(secret), created_at=utcnow()))
        token_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        if by is not None:
            _audit(conn, db, by, kind, "issued", owner, f"#{token_id}")
        return token_id


def _audit(conn: Connection, db: Database, by: str, kind: Kind, what: str, owner: str, detail: str) -> None:
    from pipeline.store.audit import record_in

    action = f"agency.token.{what}" if kind == "agency" else f"token.{what}"
    record_in(conn, db, by, action, f"{kind}:{owner}", detail)


def create_endpoint_token(db: Database, endpoint: str) -> str:
    """A new token for ``endpoint`` to pull its programs; the caller shows it once."""
    secret = new_secret()
    add_token(db, "endpoint", endpoint, secret)
    return secret


def create_agency_token(db: Database, agency: str, *, by: str | None = None) -> tuple[int, str]:
    """(id, a new token) for ``agency``'s API calls; the caller checks the agency exists.
    ``by`` (who issues it) gets an audit entry in the same transaction."""
    secret = new_secret()
    return add_token(db, "agency", agency, secret, by=by), secret


def owner_of_token(db: Database, kind: Kind, secret: str) -> str | None:
    """Whose live ``kind`` token ``secret`` is (and note that it was used), or None."""
    t = db.table(TABLE)
    with db.begin() as conn:
        row = (
            conn.execute(
                sa.select(t.c.id, t.c.owner).where(
                    t.c.kind == kind, t.c.token_hash == digest(secret), t.c.revoked_at.is_(None)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        conn.execute(t.update().where(t.c.id == row["id"]).values(last_used_at=utcnow()))
    return str(row["owner"])


def list_tokens(db: Database, kind: Kind, owner: str | None = None) -> list[Token]:
    """Tokens of ``kind`` (of ``owner`` only, if given), by owner then id; never the secrets."""
    t = db.table(TABLE)
    query = sa.select(t).where(t.c.kind == kind).order_by(t.c.owner, t.c.id)
    if owner is not None:
        query = query.where(t.c.owner == owner)
    with db.begin() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        Token(
            id=r["id"],
            kind=r["kind"],
            owner=r["owner"],
            created_at=as_utc(r["created_at"]) or utcnow(),
            last_used_at=as_utc(r["last_used_at"]),
            revoked_at=as_utc(r["revoked_at"]),
        )
        for r in rows
    ]


def revoke_tokens(db: Database, kind: Kind, owner: str, *, token_id: int | None = None, by: str | None = None) -> int:
    """Revoke one live token of ``owner`` (by id) or all of them; how many were revoked.
    ``by`` (who revokes) gets an audit entry in the same transaction when any was revoked."""
    t = db.table(TABLE)
    query = t.update().where(t.c.kind == kind, t.c.owner == owner, t.c.revoked_at.is_(None))
    if token_id is not None:
        query = query.where(t.c.id == token_id)
    with db.begin() as conn:
        n = int(conn.execute(query.values(revoked_at=utcnow())).rowcount)
        if by is not None and n:
            _audit(conn, db, by, kind, "revoked", owner, f"#{token_id}" if token_id is not None else f"{n} mã")
        return n


def revoke_token(db: Database, kind: Kind, token_id: int) -> Token:
    """Revoke the ``kind`` token ``token_id`` (no change if already revoked); the token as it is now."""
    t = db.table(TABLE)
    with db.begin() as conn:
        conn.execute(
            t.update().where(t.c.id == token_id, t.c.kind == kind, t.c.revoked_at.is_(None)).values(revoked_at=utcnow())
        )
    for tok in list_tokens(db, kind):
        if tok.id == token_id:
            return tok
    raise NotFoundError(f"token {token_id}: no such {kind} token; see `loa token list`", code="token.not_found")


def last_used(db: Database, kind: Kind) -> dict[str, dt.datetime]:
    """Owner → the last time one of its ``kind`` tokens was used."""
    t = db.table(TABLE)
    query = sa.select(t.c.owner, sa.func.max(t.c.last_used_at)).where(t.c.kind == kind).group_by(t.c.owner)
    with db.begin() as conn:
        return {str(o): at for o, v in conn.execute(query) if (at := as_utc(v)) is not None}
