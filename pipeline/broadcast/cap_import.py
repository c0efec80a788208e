"""``loa cap import``: a CAP 1.2 alert from a file or an allow-listed URL → an emergency bulletin.

What an import does (every bad alert is a ``CapError`` naming the element: nothing is stored):

- **Alert**: a new emergency bulletin (khẩn cấp) for the communes its areas map to.
- **Update**: a new bulletin that supersedes the newest version of the alert it references;
  it reaches the new area's communes *and* every commune the old version reached, so every
  loudspeaker that aired the old version switches to the new one. Every unapproved version
  of the alert becomes "superseded" at once; the approved one when the Update is approved.
- **Cancel**: every version of the referenced alert becomes "cancelled" at once: a cancel
  airs nothing, stopping a withdrawn warning should not wait, and nothing of a cancelled
  alert can be approved again (an Update that comes after it is refused).
- **Duplicates** (the same sender and identifier again) do nothing and say so. **Out of order**:
  an alert that a message already imported references (an Update or Cancel that came first),
  or an Update older than the version in force, is recorded as stale and does nothing; a
  Cancel or Update whose alert is not known yet is kept, so the alert is refused when it comes.

What changes bulletins is ``pipeline.lifecycle`` (``import_version``, ``cancel_alert``): each
message is one transaction with the bulletins it changes, so an import is idempotent by its
CAP identifier even when retried after a crash.

Approval follows the deployment's rule, ``[cap] approval`` in loa.toml: "manual" (default)
stores a draft that an approver approves like any bulletin (then the scheduler dispatches
it); "auto" approves it on import (by "cap:<sender>") and the scheduler dispatches it at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import httpx

from pipeline import lifecycle, outbound
from pipeline.broadcast.cap import CapAlert, check_airable, communes_of, parse_alert, to_bulletin
from pipeline.config import Settings
from pipeline.errors import CapError, LoaError, UsageError
from pipeline.models import Bulletin, Deployment
from pipeline.store import Database
from pipeline.store import cap as cap_store

ACTIVE = ("draft", "approved")


@dataclass(frozen=True, slots=True)
class ImportResult:
    outcome: str  # added | updated | cancelled | duplicate | stale | kept | refused
    message: str
    bulletin: Bulletin | None = None
    ended: tuple[int, ...] = ()


def fetch_alert(url: str, *, settings: Settings) -> bytes:
    """The alert at ``url`` if the deployment allows that URL (``[cap] allowed_urls``).

    The URL is normalised first (``/cap/../secret`` is ``/secret``) and the normalised URL
    is both checked and fetched; the connection goes through the outbound guard
    (``[outbound]``), and a redirect is not followed.
    """
    try:
        clean = outbound.normalize_url(url)
    except ValueError as exc:
        raise UsageError(f"{url}: not a URL Loa fetches ({exc})") from exc
    if not outbound.url_allowed(clean, settings.cap.allowed_urls):
        raise UsageError(
            f"{url}: not on the CAP allow-list (as {clean}); add it (or a prefix ending in /) "
            "to [cap] allowed_urls in loa.toml"
        )
    limit = settings.cap.max_bytes
    try:
        with (
            outbound.client(settings.outbound, timeout_s=settings.cap.timeout_s) as client,
            client.stream("GET", clean, headers={"Accept": "application/cap+xml, application/xml"}) as response,
        ):
            if response.status_code != 200:
                raise LoaError(f"{clean}: the server answered {response.status_code}; try again later")
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > limit:
                    raise CapError(
                        f"{clean}: larger than {limit} bytes; not a CAP alert Loa takes",
                        code="cap.too_large",
                        file=clean,
                        limit=limit,
                    )
    except httpx.HTTPError as exc:
        raise LoaError(f"{clean}: cannot fetch the alert: {exc.__class__.__name__}: {exc}") from exc
    return data


def _head(db: Database, b: Bulletin) -> Bulletin:
    """The newest version of the chain ``b`` starts (following Updates that supersede it)."""
    seen = {b.id}
    while b.id is not None and (nxt := cap_store.successor_of(db, b.id)) is not None and nxt.id not in seen:
        seen.add(nxt.id)
        b = nxt
    return b


def _free_title(db: Database, b: Bulletin, alert: CapAlert, settings: Settings) -> Bulletin:
    """A title no other bulletin of the same source has (an Update often keeps the headline)."""
    if not cap_store.title_taken(db, b.title, b.source):
        return b
    sent = alert.sent.astimezone(settings.tz)
    title = f"{b.title} (cập nhật {sent:%H:%M %d/%m/%Y})"
    if cap_store.title_taken(db, title, b.source):
        title = f"{b.title} ({alert.identifier})"
    from dataclasses import replace

    return replace(b, title=title)


def import_alert(
    data: bytes,
    *,
    where: str,
    deployment: Deployment,
    db: Database,
    settings: Settings,
    now: dt.datetime | None = None,
) -> ImportResult:
    now = now or dt.datetime.now(settings.tz)
    alert = parse_alert(data, where=where)
    digest = hashlib.sha256(data).hexdigest()
    seen = cap_store.find_message(db, alert.sender, alert.identifier)
    if seen is not None:
        same = "" if seen.sha256 == digest else " (with different content, which is ignored)"
        made = f", bulletin #{seen.bulletin_id}" if seen.bulletin_id else ""
        return ImportResult(
            "duplicate",
            f"{alert.sender},{alert.identifier} was imported already ({seen.outcome}{made}){same}; nothing to do",
        )
    info = check_airable(alert, now=now)
    message = cap_store.CapMessage(
        sender=alert.sender,
        identifier=alert.identifier,
        sent=alert.sent,
        msg_type=alert.msg_type,
        refs=tuple(f"{r.sender},{r.identifier},{r.sent}" for r in alert.references),
        outcome="",
        sha256=digest,
    )
    later = [m for m in cap_store.messages(db) if alert.key in m.ref_keys]
    if later:
        first = later[0]
        note = f"already {'cancelled' if first.msg_type == 'Cancel' else 'replaced'} by {first.identifier}"
        lifecycle.note_message(db, _with(message, outcome=f"stale: {note}"))
        return ImportResult("stale", f"{alert.identifier}: {note} (arrived earlier); nothing to do")
    known = [b for r in alert.references if (b := cap_store.bulletin_by_cap(db, r.sender, r.identifier)) is not None]
    heads = list({h.id: h for h in (_head(db, b) for b in known)}.values())
    newer = [h for h in heads if h.cap_sent is not None and h.cap_sent > alert.sent]
    if newer and alert.msg_type in ("Update", "Cancel"):
        note = f"older than {newer[0].cap_identifier} (bulletin #{newer[0].id}) already in"
        lifecycle.note_message(db, _with(message, outcome=f"stale: {note}"))
        return ImportResult("stale", f"{alert.identifier}: {note}; nothing to do")
    active = [h for h in heads if h.status in ACTIVE and h.id is not None]

    actor = lifecycle.system(f"cap:{alert.sender}")
    if alert.msg_type == "Cancel":
        if not known:
            lifecycle.note_message(db, _with(message, outcome="kept: cancels an alert not seen yet"))
            return ImportResult(
                "kept", f"{alert.identifier}: cancels an alert Loa has not seen; kept for when it comes"
            )
        cancelled = lifecycle.cancel_alert(db, actor, message)
        if cancelled.outcome == "duplicate":
            return ImportResult("duplicate", f"{alert.sender},{alert.identifier} was imported already; nothing to do")
        names = ", ".join(f"#{i}" for i in cancelled.ended) or "nothing (already ended)"
        return ImportResult("cancelled", f"{alert.identifier}: cancelled {names}", ended=cancelled.ended)

    assert info is not None
    communes = list(communes_of(info, deployment))
    old = max(active, key=lambda h: h.cap_sent or dt.datetime.min.replace(tzinfo=dt.UTC), default=None)
    if old is not None:  # an update reaches every commune the old version reached
        communes += [c.code for c in deployment.targeted(old.targets)]
    b = to_bulletin(
        alert, info, communes=list(dict.fromkeys(communes)), tz=settings.tz, supersedes=old.id if old else None
    )
    b = _free_title(db, b, alert, settings)
    auto = settings.cap.approval == "auto"
    change = lifecycle.import_version(db, actor, b, message, approve=auto)
    if change.outcome == "duplicate":
        return ImportResult("duplicate", f"{alert.sender},{alert.identifier} was imported already; nothing to do")
    if change.outcome == "refused" or change.bulletin is None:
        return ImportResult(
            "refused", f"{alert.identifier}: its alert was cancelled; nothing of it airs again, nothing stored"
        )
    stored = change.bulletin
    state = "approved" if stored.status == "approved" else f"draft; approve it with `loa bulletin approve {stored.id}`"
    text = f"{alert.identifier}: bulletin #{stored.id} ({state}) for {len(b.targets)} communes"
    if old is not None:
        superseded = old.id in change.ended or old.status == "draft"
        text += f"; it supersedes #{old.id}" + (" (now superseded)" if superseded else " once approved")
    return ImportResult(change.outcome, text, stored, change.ended)


def _with(m: cap_store.CapMessage, *, outcome: str, bulletin_id: int | None = None) -> cap_store.CapMessage:
    from dataclasses import replace

    return replace(m, outcome=outcome, bulletin_id=bulletin_id)
