"""Signed webhooks: approval, airing and withdrawal events POSTed to each ``[[webhook]]`` URL.

Events come from the outbox table (``pipeline/store/webhooks.py``): approvals and
withdrawals are recorded by the store in the same transaction as the change; airings by
``program_aired``, which the delivery side calls after a program reached its endpoints.
``deliver_webhooks`` sends what is due, retries with exponential backoff and records each
outcome. Every request carries::

    Loa-Event-Id: <uuid>                  receivers dedupe by it (a retry sends the same id)
    Loa-Event-Type: bulletin.approved | bulletin.withdrawn | program.aired
    Loa-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>

``verify_signature`` is what a receiver does (docs/publish.md shows it in a few lines).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from pipeline import outbound
from pipeline.config import Settings, WebhookSettings
from pipeline.errors import ConfigError, OutboundRefused
from pipeline.store import Database
from pipeline.store import bulletins as bulletin_store
from pipeline.store import webhooks as store

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "Loa-Signature"
LEASE = dt.timedelta(minutes=2)
HISTORY = dt.timedelta(days=7)  # a newly configured URL gets the events of the last week


@dataclass(frozen=True, slots=True)
class WebhookReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    errors: tuple[str, ...] = ()


def sign(secret: bytes, body: bytes, *, timestamp: int) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    secret: bytes, header: str, body: bytes, *, tolerance_s: int = 300, now: float | None = None
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and is at most ``tolerance_s`` old."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp=timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def secret_of(hook: WebhookSettings, environ: Mapping[str, str] | None = None) -> bytes:
    """The hook's secret from its environment variable or its file; never logged."""
    env = os.environ if environ is None else environ
    if hook.secret_env:
        value = env.get(hook.secret_env, "")
        if value:
            return value.encode()
        raise ConfigError(f"webhook {hook.url}: the environment variable {hook.secret_env} is empty or unset")
    if hook.secret_file is not None:
        try:
            value = hook.secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"webhook {hook.url}: cannot read secret_file {hook.secret_file}: {exc.strerror}"
            ) from exc
        if value:
            return value.encode()
        raise ConfigError(f"webhook {hook.url}: secret_file {hook.secret_file} is empty")
    raise ConfigError(f"webhook {hook.url}: give secret_env or secret_file (the HMAC key receivers verify with)")


def body_of(event: store.Event) -> bytes:
    return json.dumps(event.body(), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def program_aired(
    db: Database,
    *,
    program_id: str,
    commune: str,
    start: dt.datetime,
    bulletin_ids: Sequence[int],
    endpoints: Sequence[str] = (),
) -> str | None:
    """Record that ``program_id`` reached its endpoints; call after a successful delivery.

    Idempotent: the event id is derived from the program id and its start, so calling it
    again for the same program (a re-push) records nothing new. Internal bulletins are left
    out; a program with no public bulletin records nothing (returns None).
    """
    public = []
    for bid in dict.fromkeys(bulletin_ids):
        b = bulletin_store.get_bulletin(db, bid)
        if b.public and b.status == "approved":
            public.append({"id": bid, "title": b.title, "source": b.source})
    if not public:
        return None
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"loa:aired:{program_id}:{start.isoformat()}"))
    payload: dict[str, Any] = {
        "program": {"id": program_id, "commune": commune, "start": start.isoformat(), "endpoints": list(endpoints)},
        "bulletins": public,
    }
    return store.add_event(db, "program.aired", payload, event_id=event_id)


def _retry_at(hook: WebhookSettings, attempts_done: int) -> dt.datetime | None:
    if attempts_done >= hook.max_attempts:
        return None
    delay = min(hook.backoff_s * (2 ** (attempts_done - 1)), hook.backoff_max_s)
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)


def deliver_webhooks(
    db: Database,
    settings: Settings,
    *,
    client: httpx.Client | None = None,
    environ: Mapping[str, str] | None = None,
) -> WebhookReport:
    """Send every due event to every configured URL once; record delivered / retrying / failed.

    Requests go through the outbound guard (``[outbound]``): a URL whose host resolves to a
    loopback, link-local or private address is not posted to, and that delivery fails at once.
    """
    hooks = {h.url: h for h in settings.webhook}
    secrets = {url: secret_of(h, environ) for url, h in hooks.items()}  # a missing secret stops before sending
    store.fan_out(db, [(h.url, h.events) for h in hooks.values()], since=dt.datetime.now(dt.UTC) - HISTORY)
    report = WebhookReport()
    own = client is None
    http = client or outbound.client(settings.outbound, timeout_s=10.0, follow_redirects=False)
    try:
        for d in store.claim_due(db, lease=LEASE):
            hook = hooks.get(d.url)
            if hook is None:
                store.mark_attempt_failed(
                    db, d.id, error="this URL is no longer configured", response_status=None, retry_at=None
                )
                report = dataclasses.replace(report, failed=report.failed + 1)
                continue
            report = _send(db, http, hook, secrets[d.url], d, report)
    finally:
        if own:
            http.close()
    return report


def _send(
    db: Database,
    http: httpx.Client,
    hook: WebhookSettings,
    secret: bytes,
    d: store.WebhookDelivery,
    report: WebhookReport,
) -> WebhookReport:
    body = body_of(d.event)
    headers = {
        "content-type": "application/json; charset=utf-8",
        "user-agent": "Loa-Webhook/1",
        "loa-event-id": d.event.id,
        "loa-event-type": d.event.kind,
        SIGNATURE_HEADER: sign(secret, body, timestamp=int(time.time())),
    }
    status: int | None = None
    try:
        response = http.post(d.url, content=body, headers=headers, timeout=hook.timeout_s)
        status = response.status_code
        if 200 <= status < 300:
            store.mark_delivered(db, d.id, response_status=status)
            log.info("webhook %s: event %s (%s) delivered", d.url, d.event.id, d.event.kind)
            return dataclasses.replace(report, delivered=report.delivered + 1)
        error = f"HTTP {status} from the receiver"
    except httpx.HTTPError as exc:
        error = f"{exc.__class__.__name__}: {exc}"
    except OutboundRefused as exc:  # the configuration must change: retrying would not help
        store.mark_attempt_failed(db, d.id, error=str(exc), response_status=None, retry_at=None)
        log.warning("webhook %s: event %s not sent: %s", d.url, d.event.id, exc)
        message = f"{d.url}: event {d.event.id}: {exc}"
        return dataclasses.replace(report, failed=report.failed + 1, errors=(*report.errors, message))
    retry_at = _retry_at(hook, d.attempts + 1)
    store.mark_attempt_failed(db, d.id, error=error, response_status=status, retry_at=retry_at)
    log.warning("webhook %s: event %s attempt %d failed: %s", d.url, d.event.id, d.attempts + 1, error)
    message = f"{d.url}: event {d.event.id}: {error}"
    if retry_at is None:
        return dataclasses.replace(report, failed=report.failed + 1, errors=(*report.errors, message))
    return dataclasses.replace(report, retrying=report.retrying + 1, errors=(*report.errors, message))
