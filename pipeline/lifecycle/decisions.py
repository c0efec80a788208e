"""Operators' decisions on normal bulletins (thông thường), through the table like every action."""

from __future__ import annotations

import datetime as dt

from pipeline.broadcast.decisions import check_decision
from pipeline.errors import NotFoundError
from pipeline.lifecycle.actions import load_in
from pipeline.lifecycle.actors import Actor
from pipeline.lifecycle.table import move
from pipeline.models import Decision, Deployment
from pipeline.store import Database, audit
from pipeline.store import decisions as decision_store


def decide(
    db: Database,
    actor: Actor,
    bulletin_id: int,
    commune: str,
    decision: str,
    *,
    until: dt.date | None,
    reason: str,
    today: dt.date,
    deployment: Deployment,
) -> Decision:
    """A commune's decision (accept, defer until a date, decline with a reason), with its audit entry.

    The actor must act for that commune (an operator of it, its device, an admin); the
    bulletin must be an approved normal bulletin sent to it (``check_decision``'s rules).
    """
    c = deployment.commune(commune)
    if c is None or (actor.communes is not None and commune not in actor.communes):
        raise NotFoundError(f"commune {commune}: no such commune", code="lifecycle.not_found", commune=commune)
    with db.begin() as conn:
        b = load_in(conn, db, actor, bulletin_id, deployment)
        move(b.status, "decide", actor.role, bulletin_id=bulletin_id)
        d = check_decision(b, c, decision, until=until, reason=reason, by=_by(actor), today=today)
        stored = decision_store.save_in(conn, db, d)
        detail = f"{commune} {d.decision}" + (f" {d.until:%Y-%m-%d}" if d.until else "")
        audit.record_in(
            conn, db, actor.name, "bulletin.decided", f"bulletin:{bulletin_id}", detail, client=actor.client
        )
    return stored


def _by(actor: Actor) -> str:
    """How a decision names who took it ("user:<name>", "endpoint:<name>")."""
    return actor.name if ":" in actor.name else f"user:{actor.name}"
