"""A CAP alert's versions: the Alert and its Updates are one alert; a Cancel ends all of them.

``import_version`` and ``cancel_alert`` are what ``loa cap import`` does to bulletins, each
in one transaction with the message it remembers (the CAP identifier makes an import
idempotent: the same identifier again changes nothing). An Update supersedes every
unapproved version of its alert at once, and the approved version when the Update is
approved; a Cancel (even one that came before its alert) makes every version cancelled,
and nothing of a cancelled alert can be approved again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sqlalchemy.engine import Connection

from pipeline.lifecycle.actions import Change, approve_in, end_in, submit_in
from pipeline.lifecycle.actors import Actor
from pipeline.lifecycle.table import move
from pipeline.models import Bulletin
from pipeline.store import Database
from pipeline.store import bulletins as bulletin_store
from pipeline.store import cap as cap_store

Key = tuple[str, str]  # (sender, identifier)


@dataclass(frozen=True, slots=True)
class Alert:
    keys: frozenset[Key]  # every message identifier of the alert and what they reference
    versions: tuple[Bulletin, ...]  # oldest first
    cancelled: bool


@dataclass(frozen=True, slots=True)
class CapChange:
    outcome: str  # added | updated | cancelled | duplicate | refused | noted
    bulletin: Bulletin | None = None
    ended: tuple[int, ...] = ()
    message: cap_store.CapMessage | None = None  # the message as stored (duplicate: the earlier one)


def _ref_key(ref: str) -> Key:
    parts = ref.split(",")
    return (parts[0], parts[1] if len(parts) > 1 else "")


def _keys_of(b: Bulletin) -> set[Key]:
    own = {(b.cap_sender or "", b.cap_identifier)} if b.cap_identifier else set()
    return own | {_ref_key(r) for r in b.cap_references}


def alert_in(conn: Connection, db: Database, keys: set[Key]) -> Alert:
    """The versions of the alert these message keys belong to, and whether it was cancelled."""
    keys = set(keys)
    found: dict[int, Bulletin] = {}
    candidates = bulletin_store.cap_bulletins_in(conn, db)
    grew = True
    while grew:
        grew = False
        for b in candidates:
            if b.id is None or b.id in found:
                continue
            linked = b.supersedes in found or any(f.supersedes == b.id for f in found.values())
            if _keys_of(b) & keys or linked:
                found[b.id] = b
                keys |= _keys_of(b)
                grew = True
    cancels = any({_ref_key(r) for r in m.refs} & keys for m in cap_store.cancels_in(conn, db))
    versions = tuple(sorted(found.values(), key=lambda v: (v.cap_sent or dt.datetime.min.replace(tzinfo=dt.UTC), v.id)))
    cancelled = cancels or any(v.status == "cancelled" for v in versions)
    return Alert(frozenset(keys), versions, cancelled)


def alert_of(conn: Connection, db: Database, b: Bulletin) -> Alert:
    return alert_in(conn, db, _keys_of(b))


def older_versions(alert: Alert, b: Bulletin) -> list[Bulletin]:
    """The versions of ``alert`` sent before ``b`` (what ``b`` replaces once approved)."""
    sent = b.cap_sent or dt.datetime.max.replace(tzinfo=dt.UTC)
    return [
        v for v in alert.versions if v.id != b.id and (v.cap_sent is None or v.cap_sent < sent or v.id == b.supersedes)
    ]


def _message_keys(m: cap_store.CapMessage) -> set[Key]:
    return {(m.sender, m.identifier)} | m.ref_keys


def import_version(
    db: Database, actor: Actor, b: Bulletin, message: cap_store.CapMessage, *, approve: bool
) -> CapChange:
    """An Alert or Update as a bulletin: a draft (approved at once when ``approve``), in one
    transaction with its message. An Update supersedes every unapproved version now."""
    with db.begin() as conn:
        seen = cap_store.find_in(conn, db, message.sender, message.identifier)
        if seen is not None:
            return CapChange("duplicate", message=seen)
        alert = alert_in(conn, db, _message_keys(message))
        if alert.cancelled:
            cap_store.note_in(conn, db, replace(message, outcome="refused: the alert was cancelled"))
            return CapChange("refused", message=message)
        change = submit_in(conn, db, actor, b, deployment=None)
        new = change.bulletin
        assert new.id is not None
        ended: list[int] = []
        for v in alert.versions:  # every unapproved version, at once
            if v.id != new.id and v.status == "draft":
                ended.append(
                    end_in(conn, db, actor, v, "supersede", detail=f"CAP {message.identifier}").bulletin.id or 0
                )
        if approve:
            approved = approve_in(conn, db, actor, new, note=" (CAP)")
            new, ended = approved.bulletin, ended + list(approved.ended)
        outcome = "updated" if message.msg_type == "Update" and alert.versions else "added"
        cap_store.note_in(conn, db, replace(message, outcome=outcome, bulletin_id=new.id))
    return CapChange(outcome, new, tuple(ended), message)


def cancel_alert(db: Database, actor: Actor, message: cap_store.CapMessage) -> CapChange:
    """A Cancel: every live version (draft or approved) of the alert it references becomes
    cancelled, in one transaction; the ended ones keep their state, and none can be approved."""
    with db.begin() as conn:
        seen = cap_store.find_in(conn, db, message.sender, message.identifier)
        if seen is not None:
            return CapChange("duplicate", message=seen)
        alert = alert_in(conn, db, _message_keys(message))
        changes: list[Change] = []
        for v in alert.versions:
            if v.status not in ("draft", "approved"):
                continue  # already ended (superseded, withdrawn): it keeps saying how
            move(v.status, "cancel", actor.role, bulletin_id=v.id)
            changes.append(end_in(conn, db, actor, v, "cancel", detail=f"CAP {message.identifier}"))
        ended = tuple(c.bulletin.id for c in changes if c.outcome == "cancelled" and c.bulletin.id is not None)
        first = ended[0] if ended else None
        cap_store.note_in(conn, db, replace(message, outcome="cancelled", bulletin_id=first))
    return CapChange("cancelled", None, ended, message)


def note_message(db: Database, message: cap_store.CapMessage) -> CapChange:
    """Remember a message that changes no bulletin (stale, or a Cancel kept for an alert not seen yet)."""
    with db.begin() as conn:
        seen = cap_store.find_in(conn, db, message.sender, message.identifier)
        if seen is not None:
            return CapChange("duplicate", message=seen)
        cap_store.note_in(conn, db, message)
    return CapChange("noted", message=message)
