"""Send the reminders that hold and were never sent; record each one (see ``pipeline.store.reminders``).

``run_reminders`` is called every minute by the scheduler's ``loa-ops`` job and by
``loa reminders run``. Each (event, recipient) is sent once: an e-mail is recorded after the
SMTP server took it (a failure is tried again at the next evaluation), the webhook event
(``reading.requested`` / ``reading.due``) is recorded in the same transaction as its row.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from pipeline.config import Settings
from pipeline.errors import DeliveryError
from pipeline.models import Deployment
from pipeline.reminders.due import Reminder, due_reminders, message
from pipeline.store import Database
from pipeline.store import approvals as approval_store
from pipeline.store import bulletins as bulletin_store
from pipeline.store import recordings as recording_store
from pipeline.store import reminders as reminder_store
from pipeline.store import users as user_store

log = logging.getLogger(__name__)

Mailer = Callable[[str, str, str], None]  # (to, subject, body); raises DeliveryError


def _mailer(settings: Settings) -> Mailer | None:
    if not settings.reminders.smtp_host:
        return None
    from pipeline.reminders.mail import send_mail

    def mail(to: str, subject: str, body: str) -> None:
        send_mail(settings.reminders, to=to, subject=subject, body=body)

    return mail


def _payload(r: Reminder, *, status: str, subject: str, body: str) -> dict[str, Any]:
    return {
        "bulletin": r.bulletin_id,
        "title": r.title,
        "status": status,
        "language": r.language,
        "communes": list(r.communes),
        "first_air": r.first_air.isoformat(),
        "deadline": r.deadline.isoformat(),
        "recipients": list(r.recipients),
        "subject": subject,
        "message": body,
    }


def pending(settings: Settings, deployment: Deployment, db: Database, *, now: dt.datetime) -> list[Reminder]:
    """The reminders that hold at ``now`` (sent or not)."""
    bulletins = [b for s in ("draft", "approved") for b in bulletin_store.list_bulletins(db, status=s)]
    ids = [b.id for b in bulletins if b.id is not None]
    have = set(recording_store.current_recordings(db, ids)) if ids else set()
    approved_by: dict[int, str | None] = {}
    for b in bulletins:
        if b.id is not None and b.status == "approved":
            last = approval_store.last_approval(db, b.id)
            approved_by[b.id] = last.approved_by if last else None
    return due_reminders(
        bulletins,
        have,
        user_store.list_users(db),
        deployment,
        approved_by=approved_by,
        now=now,
        tz=settings.tz,
        nightly=settings.nightly.time,
        before=dt.timedelta(hours=settings.reminders.before_deadline_hours),
    )


def _record(db: Database, r: Reminder, recipient: str, *, webhook: tuple[str, dict[str, Any]] | None = None) -> bool:
    return reminder_store.record_sent(
        db, event=r.event, recipient=recipient, bulletin_id=r.bulletin_id, language=r.language, webhook=webhook
    )


def run_reminders(
    settings: Settings,
    deployment: Deployment,
    db: Database,
    *,
    now: dt.datetime,
    mailer: Mailer | None = None,
) -> list[tuple[str, str]]:
    """Send what holds and was never sent; the (event, recipient) pairs sent now."""
    if not settings.reminders.enabled:
        return []
    mail = mailer or _mailer(settings)
    to_webhooks = any(k.startswith("reading.") for h in settings.webhook for k in h.events)
    done = reminder_store.sent(db)
    addresses = reminder_store.emails(db) if mail is not None else {}
    status = {b.id: b.status for s in ("draft", "approved") for b in bulletin_store.list_bulletins(db, status=s)}
    out: list[tuple[str, str]] = []
    for r in pending(settings, deployment, db, now=now):
        subject, body = message(
            r, status=status.get(r.bulletin_id, ""), tz=settings.tz, web_url=settings.reminders.web_url
        )
        if to_webhooks and (r.event, reminder_store.WEBHOOK) not in done:
            payload = _payload(r, status=status.get(r.bulletin_id, ""), subject=subject, body=body)
            if _record(db, r, reminder_store.WEBHOOK, webhook=(r.webhook_kind, payload)):
                out.append((r.event, reminder_store.WEBHOOK))
        for name in r.recipients:
            if (r.event, name) in done or name not in addresses or mail is None:
                continue
            try:
                mail(addresses[name], subject, body)
            except DeliveryError as exc:
                log.warning("reminder %s to %s: %s; tried again at the next evaluation", r.event, name, exc)
                continue
            _record(db, r, name)
            out.append((r.event, name))
    if out:
        log.info("reminders: %d sent", len(out))
    return out
