"""The actions on a bulletin. Each is one transaction: the table's check, who may act, the
write, its audit entry and its webhook event commit together or not at all."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from pipeline.errors import NotFoundError, StoreError, UsageError
from pipeline.lifecycle.actors import Actor
from pipeline.lifecycle.table import NEW, move
from pipeline.models import Bulletin, Deployment
from pipeline.store import Database, audit
from pipeline.store import agencies as agency_store
from pipeline.store import approvals as approval_store
from pipeline.store import bulletins as bulletin_store
from pipeline.store.db import utcnow
from pipeline.store.webhooks import record_bulletin_event
from pipeline.textrules import check_bulletin


@dataclass(frozen=True, slots=True)
class Change:
    """What an action did: the bulletin after it, the outcome, the state before."""

    bulletin: Bulletin
    outcome: str  # added | revised | unchanged | replayed | approved | withdrawn | cancelled | superseded | expired
    before: str  # the state before ("new" for a bulletin just added)
    ended: tuple[int, ...] = ()  # other bulletins this action ended (versions of a CAP alert)

    @property
    def back_to_draft(self) -> bool:
        """An approved bulletin that must be approved again: what airs changed."""
        return self.before == "approved" and self.bulletin.status == "draft"


# --- scope ------------------------------------------------------------------------


def _not_found(bulletin_id: int) -> NotFoundError:
    return NotFoundError(
        f"bulletin {bulletin_id}: no such bulletin; see `loa bulletin list`",
        code="lifecycle.not_found",
        bulletin=bulletin_id,
    )


def outside_scope(actor: Actor, targets: Sequence[str], deployment: Deployment) -> str | None:
    """The first target ``actor`` may not address, or None when all are within its scope."""
    if actor.communes is None:
        return None
    for t in targets:
        reached = {c.code for c in deployment.targeted((t,))}
        if t == "all" or not reached or not reached <= actor.communes:
            return t
    return None


def _check_targets(actor: Actor, b: Bulletin, deployment: Deployment | None) -> None:
    if actor.communes is None:
        return
    assert deployment is not None, "a scoped actor needs the deployment"
    outside = outside_scope(actor, b.targets, deployment)
    if outside is not None:
        raise UsageError(
            f"{b.title}: {actor.name} may not address {outside!r} (outside its scope)",
            code="lifecycle.out_of_scope",
            target=outside,
            role=actor.role,
        )


def load_in(conn: Connection, db: Database, actor: Actor, bulletin_id: int, deployment: Deployment | None) -> Bulletin:
    """The bulletin if ``actor`` may see it; else "not found", as if it did not exist."""
    b = bulletin_store.get_in(conn, db, bulletin_id)
    if b is None:
        raise _not_found(bulletin_id)
    if actor.agency is not None and agency_store.owner_in(conn, db, bulletin_id) != actor.agency:
        raise _not_found(bulletin_id)
    if actor.communes is not None:
        assert deployment is not None, "a scoped actor needs the deployment"
        if not {c.code for c in deployment.targeted(b.targets)} & actor.communes:
            raise _not_found(bulletin_id)
    if actor.languages is not None and not reader_languages(actor, b, deployment):
        raise _not_found(bulletin_id)
    return b


def reader_languages(actor: Actor, b: Bulletin, deployment: Deployment | None) -> frozenset[str]:
    """The languages of ``actor``'s (a reader's) that ``b`` airs in a commune of their scope."""
    if actor.languages is None:
        return frozenset(b.languages)
    assert deployment is not None, "a reader needs the deployment"
    reached = [c for c in deployment.targeted(b.targets) if actor.communes is None or c.code in actor.communes]
    return frozenset(lang for c in reached for lang in c.languages if lang in b.languages and lang in actor.languages)


def record_events(conn: Connection, db: Database, before: str, after: Bulletin) -> None:
    """The webhook event of a change: approved, or no longer approved (it stops airing)."""
    if after.status == before:
        return
    if after.status == "approved":
        record_bulletin_event(conn, db, "bulletin.approved", after)
    elif before == "approved" or after.status in ("withdrawn", "superseded", "cancelled", "expired"):
        record_bulletin_event(conn, db, "bulletin.withdrawn", after)


def set_state(conn: Connection, db: Database, b: Bulletin, state: str) -> Bulletin:
    """Store ``b``'s next state with the times that go with it."""
    assert b.id is not None
    if state == b.status:
        return b
    values: dict[str, object] = {"status": state}
    if state == "draft":
        values |= {"approved_at": None, "approved_by": None}
    elif state in ("withdrawn", "superseded", "cancelled", "expired"):
        values["withdrawn_at"] = utcnow()
    return bulletin_store.set_in(conn, db, b.id, **values)


# --- submit and revise ------------------------------------------------------------


def _revise_in(conn: Connection, db: Database, actor: Actor, current: Bulletin, b: Bulletin) -> Change:
    assert current.id is not None
    if bulletin_store.content_hash(b) == current.content_hash:
        return Change(current, "unchanged", current.status)
    nxt = move(current.status, "revise", actor.role, bulletin_id=current.id)
    saved, _ = bulletin_store.save_in(conn, db, b)
    saved = set_state(conn, db, saved, nxt)
    note = f"r{saved.revision}" + (" (về nháp)" if current.status == "approved" else "")
    audit.record_in(conn, db, actor.name, "bulletin.revised", f"bulletin:{saved.id}", note, client=actor.client)
    record_events(conn, db, current.status, saved)
    return Change(saved, "revised", current.status)


def submit_in(
    conn: Connection,
    db: Database,
    actor: Actor,
    b: Bulletin,
    *,
    deployment: Deployment | None,
    new_only: bool = False,
) -> Change:
    """``submit`` inside the caller's transaction (CAP import shares it with its message)."""
    check_bulletin(b)  # the text rules, whatever door built ``b``
    _check_targets(actor, b, deployment)
    current = bulletin_store.find_in(conn, db, b.title, b.source)
    if current is None:
        move(NEW, "submit", actor.role)
        saved, _ = bulletin_store.save_in(conn, db, b)
        assert saved.id is not None
        if actor.agency is not None:
            agency_store.set_owner_in(conn, db, saved.id, actor.agency)
        audit.record_in(
            conn, db, actor.name, "bulletin.added", f"bulletin:{saved.id}", saved.title, client=actor.client
        )
        return Change(saved, "added", NEW)
    assert current.id is not None
    mine = actor.agency is None or agency_store.owner_in(conn, db, current.id) == actor.agency
    if new_only or not mine:
        raise UsageError(
            f"{b.title}: bulletin #{current.id} has this title and source already; change that one instead",
            code="lifecycle.title_taken",
            bulletin=current.id,
            title=b.title,
        )
    return _revise_in(conn, db, actor, current, b)


def submit(
    db: Database,
    actor: Actor,
    b: Bulletin,
    *,
    deployment: Deployment | None = None,
    idempotency_key: str = "",
    request_sha256: str = "",
    new_only: bool = False,
) -> Change:
    """Add a bulletin (a file, the web form, the agency API, a follow-up); the same title and
    source again is a revision of that bulletin. With an ``idempotency_key`` (an agency's),
    the key is remembered in the same transaction as the save: a retry gets the same bulletin
    (outcome ``replayed``), the key with another request is refused (``lifecycle.key_reused``)."""
    key = idempotency_key.strip()
    keyed = bool(key) and actor.agency is not None
    try:
        with db.begin() as conn:
            if keyed and (replay := _replayed(conn, db, actor, key, request_sha256)) is not None:
                return replay
            change = submit_in(conn, db, actor, b, deployment=deployment, new_only=new_only)
            if keyed:
                assert change.bulletin.id is not None and actor.agency is not None
                agency_store.remember_key_in(
                    conn, db, actor.agency, key, bulletin_id=change.bulletin.id, request_sha256=request_sha256
                )
    except StoreError:
        if not keyed:
            raise
        with db.begin() as conn:  # the same key from a request running at the same time won the race
            replay = _replayed(conn, db, actor, key, request_sha256)
        if replay is None:
            raise
        return replay
    return change


def _replayed(conn: Connection, db: Database, actor: Actor, key: str, request_sha256: str) -> Change | None:
    """What an earlier request with this key stored, or None; the key with another request is refused."""
    assert actor.agency is not None
    found = agency_store.key_in(conn, db, actor.agency, key)
    if found is None:
        return None
    bulletin_id, digest = found
    if digest != request_sha256:
        raise UsageError(
            f"Idempotency-Key {key!r} was used for another request; use a new key",
            code="lifecycle.key_reused",
            key=key,
        )
    stored = bulletin_store.get_in(conn, db, bulletin_id)
    assert stored is not None
    return Change(stored, "replayed", stored.status)


def submit_all(
    db: Database, actor: Actor, bulletins: Sequence[Bulletin], *, deployment: Deployment | None = None
) -> list[Change]:
    """Several bulletins in one transaction: all are stored, or none (``loa bulletin add``)."""
    with db.begin() as conn:
        return [submit_in(conn, db, actor, b, deployment=deployment) for b in bulletins]


def submit_followup(
    db: Database,
    actor: Actor,
    b: Bulletin,
    *,
    campaign_id: int,
    answer: str,
    deployment: Deployment | None = None,
) -> Change:
    """A consultation's follow-up: the bulletin made from the agency's answer, and the answer
    kept on the campaign, in one transaction."""
    from pipeline.store.consultations import set_agency_answer_in

    with db.begin() as conn:
        change = submit_in(conn, db, actor, b, deployment=deployment)
        set_agency_answer_in(conn, db, campaign_id, answer, followup_bulletin_id=change.bulletin.id)
    return change


def revise(
    db: Database, actor: Actor, bulletin_id: int, b: Bulletin, *, deployment: Deployment | None = None
) -> Change:
    """A new text for bulletin ``bulletin_id`` (its title and source stay); back to draft if approved."""
    with db.begin() as conn:
        current = load_in(conn, db, actor, bulletin_id, deployment)
        if (b.title, b.source) != (current.title, current.source):
            raise UsageError(
                f"bulletin {bulletin_id}: a revision keeps the title and the source",
                code="lifecycle.renamed",
                bulletin=bulletin_id,
            )
        check_bulletin(b)
        _check_targets(actor, b, deployment)
        return _revise_in(conn, db, actor, current, b)


def check(
    db: Database, actor: Actor, action: str, bulletin_id: int, *, deployment: Deployment | None = None
) -> Bulletin:
    """The bulletin if ``actor`` may do ``action`` to it now (a door asks before heavy work)."""
    with db.begin() as conn:
        b = load_in(conn, db, actor, bulletin_id, deployment)
    move(b.status, action, actor.role, bulletin_id=bulletin_id)
    return b


# --- approve, withdraw, end -------------------------------------------------------


def approve_in(
    conn: Connection, db: Database, actor: Actor, b: Bulletin, *, note: str = "", missing: Sequence[str] = ()
) -> Change:
    """``approve`` inside the caller's transaction, the bulletin already loaded and in scope."""
    from pipeline.lifecycle.alerts import alert_of, older_versions

    assert b.id is not None
    alert = alert_of(conn, db, b) if b.cap_identifier else None
    if alert is not None and alert.cancelled:
        move("cancelled", "approve", actor.role, bulletin_id=b.id)
    nxt = move(b.status, "approve", actor.role, bulletin_id=b.id)
    if b.status == nxt:
        return Change(b, "unchanged", b.status)
    after = bulletin_store.set_in(conn, db, b.id, status=nxt, approved_at=utcnow(), approved_by=actor.name)
    recs = approval_store.record_in(conn, db, after, by=actor.name)
    detail = f"r{after.revision}" + "".join(f" {lang}:{sha[:12]}" for lang, sha in sorted(recs.items()))
    audit.record_in(conn, db, actor.name, "bulletin.approved", f"bulletin:{b.id}", detail + note, client=actor.client)
    if missing:  # approved knowing these languages have no reading (a second confirmation)
        target = f"bulletin:{b.id}"
        audit.record_in(
            conn, db, actor.name, "bulletin.approved_missing", target, ",".join(missing), client=actor.client
        )
    record_events(conn, db, b.status, after)
    # what this version replaces stops airing now: every older version of its alert
    older = older_versions(alert, b) if alert is not None else []
    if b.supersedes is not None and all(o.id != b.supersedes for o in older):
        prev = bulletin_store.get_in(conn, db, b.supersedes)
        older += [prev] if prev is not None else []
    ended = [end_in(conn, db, actor, o, "supersede") for o in older if o.status in ("draft", "approved")]
    return Change(after, "approved", b.status, tuple(c.bulletin.id for c in ended if c.bulletin.id is not None))


def approve(
    db: Database,
    actor: Actor,
    bulletin_id: int,
    *,
    deployment: Deployment | None = None,
    note: str = "",
    missing: Sequence[str] = (),
) -> Change:
    """Approve exactly what airs: this revision and every current recording (their sha256).
    A version of a CAP alert ends the older versions; nothing of a cancelled alert is approved.
    ``missing``: languages the approver confirmed airing without (audit ``bulletin.approved_missing``)."""
    with db.begin() as conn:
        b = load_in(conn, db, actor, bulletin_id, deployment)
        return approve_in(conn, db, actor, b, note=note, missing=missing)


_ENDED = {"withdraw": "withdrawn", "cancel": "cancelled", "supersede": "superseded", "expire": "expired"}
_AUDIT = {"withdraw": "bulletin.withdrawn", "cancel": "bulletin.cancelled", "supersede": "bulletin.superseded",
          "expire": "bulletin.expired"}  # fmt: skip


def end_in(conn: Connection, db: Database, actor: Actor, b: Bulletin, action: str, *, detail: str = "") -> Change:
    """Withdraw, cancel, supersede or expire ``b`` inside the caller's transaction.

    What an action ends as a consequence (an approval superseding older versions) is done
    by the system on the actor's behalf: the audit entry still names the actor.
    """
    assert b.id is not None
    role = actor.role if action in ("withdraw",) else "system"
    nxt = move(b.status, action, role, bulletin_id=b.id)
    if nxt == b.status:
        return Change(b, "unchanged", b.status)
    after = set_state(conn, db, b, nxt)
    audit.record_in(conn, db, actor.name, _AUDIT[action], f"bulletin:{b.id}", detail, client=actor.client)
    record_events(conn, db, b.status, after)
    return Change(after, _ENDED[action], b.status)


def withdraw(db: Database, actor: Actor, bulletin_id: int, *, deployment: Deployment | None = None) -> Change:
    """Stop a bulletin airing from the next build on (an approver's decision)."""
    with db.begin() as conn:
        b = load_in(conn, db, actor, bulletin_id, deployment)
        move(b.status, "withdraw", actor.role, bulletin_id=bulletin_id)
        return end_in(conn, db, actor, b, "withdraw")


def end(db: Database, actor: Actor, bulletin_id: int, action: str, *, detail: str = "") -> Change:
    """Cancel, supersede or expire one bulletin (the system's actions; CAP import ends whole alerts)."""
    if action not in ("cancel", "supersede", "expire"):
        raise ValueError(action)
    with db.begin() as conn:
        b = load_in(conn, db, actor, bulletin_id, None)
        move(b.status, action, actor.role, bulletin_id=bulletin_id)
        return end_in(conn, db, actor, b, action, detail=detail)


def expire(db: Database, actor: Actor, *, today: dt.date) -> list[Change]:
    """Every draft or approved bulletin whose validity ended before ``today`` becomes expired.

    One transaction per bulletin (read again inside it: one changed meanwhile by someone else
    is left alone), each audited and announced like any other action. The scheduler's minute
    job calls this with the system actor; ``loa bulletin expire`` with the CLI's."""
    with db.begin() as conn:
        ids = [b.id for b in bulletin_store.lapsed_in(conn, db, today) if b.id is not None]
    changes: list[Change] = []
    for bulletin_id in ids:
        with db.begin() as conn:
            b = bulletin_store.get_in(conn, db, bulletin_id)
            if b is None or b.status not in ("draft", "approved") or not b.valid_until < today:
                continue
            move(b.status, "expire", actor.role, bulletin_id=b.id)
            changes.append(end_in(conn, db, actor, b, "expire", detail=f"{b.valid_until:%Y-%m-%d}"))
    return changes
