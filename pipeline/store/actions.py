"""One-time tokens of web actions (approve, withdraw, dispatch): a double submit does one thing.

The confirmation form carries a fresh random token; ``claim_action`` inserts it, and
only the request that inserted it does the work. Any other request with the same
token (a double click, a resent form) finds the first one and shows its result.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from pipeline.errors import StoreError
from pipeline.store.db import Database, as_utc, utcnow


@dataclass(frozen=True, slots=True)
class WebAction:
    token: str
    user_id: int
    action: str
    bulletin_id: int
    status: str  # running | done | failed
    result: dict[str, Any]
    created_at: dt.datetime


def claim_action(db: Database, token: str, *, user_id: int, action: str, bulletin_id: int) -> bool:
    """True if this call is the first with ``token`` (it must then do the work)."""
    t = db.table("web_actions")
    try:
        with db.engine.begin() as conn:
            conn.execute(
                t.insert().values(
                    token=token,
                    user_id=user_id,
                    action=action,
                    bulletin_id=bulletin_id,
                    status="running",
                    result={},
                    created_at=utcnow(),
                )
            )
    except IntegrityError:
        return False
    return True


def finish_action(db: Database, token: str, *, status: str, result: dict[str, Any]) -> None:
    t = db.table("web_actions")
    with db.begin() as conn:
        conn.execute(t.update().where(t.c.token == token).values(status=status, result=result, finished_at=utcnow()))


def get_action(db: Database, token: str) -> WebAction | None:
    t = db.table("web_actions")
    try:
        with db.begin() as conn:
            row = conn.execute(sa.select(t).where(t.c.token == token)).mappings().first()
    except StoreError:
        return None
    if row is None:
        return None
    return WebAction(
        token=row["token"],
        user_id=row["user_id"],
        action=row["action"],
        bulletin_id=row["bulletin_id"],
        status=row["status"],
        result=dict(row["result"]),
        created_at=as_utc(row["created_at"]) or utcnow(),
    )
