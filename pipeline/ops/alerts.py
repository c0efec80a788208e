"""Alerts: what is wrong now, told once, repeated while it lasts, and told when it ends.

``evaluate`` looks at the store and the machine and returns the conditions that hold now
(each with a stable key: ``nightly:2026-12-08``, ``silent:02641``, ``emergency:42``,
``webhook:https://host``, ``workers``, ``broker``, ``disk``, ``signing-key``).
``reconcile`` compares them with the alert state kept in the store and says what to send:
a new condition *fires*, one still there after ``[alerts] repeat_minutes`` *repeats*, one
gone is *resolved*. ``run_alerts`` sends through Apprise and records a signed webhook
event, then saves the state, so a restart of the scheduler never sends one twice.
Messages are Vietnamese and name the commune, endpoint or run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.config import Settings
from pipeline.errors import LoaError
from pipeline.models import Deployment
from pipeline.ops.health import free_bytes
from pipeline.ops.metrics import alive_workers, last_contacts, url_target
from pipeline.store import Database
from pipeline.store import ops as ops_store
from pipeline.store import runs as run_store
from pipeline.store import webhooks as webhook_store

log = logging.getLogger(__name__)

FIRED, REPEAT, RESOLVED = "fired", "repeat", "resolved"
TITLES = {FIRED: "CẢNH BÁO", REPEAT: "NHẮC LẠI", RESOLVED: "ĐÃ KHẮC PHỤC"}
VIA_VI = {
    "push": "gửi chương trình",
    "pull": "thiết bị tải về",
    "receipt": "báo cáo đã phát",
    "heartbeat": "tín hiệu của thiết bị",
}


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    kind: str  # nightly | silent | emergency | webhook | workers | broker | disk | signing-key
    message: str  # Vietnamese: what is wrong, naming the commune, endpoint or run


@dataclass(frozen=True, slots=True)
class Notice:
    key: str
    kind: str
    state: str  # fired | repeat | resolved
    message: str

    @property
    def title(self) -> str:
        return f"[Loa] {TITLES[self.state]}: {self.message.split(';')[0][:120]}"

    @property
    def body(self) -> str:
        if self.state == RESOLVED:
            return f"Đã khắc phục: {self.message}"
        return self.message


Notifier = Callable[[Notice], bool]


def _local(at: dt.datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%H:%M ngày %d/%m/%Y")


def _duration_vi(seconds: float) -> str:
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} ngày"] * bool(days) + [f"{hours} giờ"] * bool(hours) + [f"{mins} phút"] * (not days)
    return " ".join(parts) or "0 phút"


# --- conditions -------------------------------------------------------------------------


def nightly_condition(db: Database, deployment: Deployment, tz: ZoneInfo) -> Condition | None:
    runs = [r for r in run_store.recent_runs(db, limit=20, kind="nightly") if r.finished_at is not None]
    if not runs or runs[0].status not in ("failed", "partial") or runs[0].date is None:
        return None
    run = runs[0]
    assert run.date is not None
    latest = ops_store.latest_deliveries_for(db, run.date.isoformat())
    not_reached = sorted(e for e, status in latest.items() if status != "delivered")
    build_failed = int(run.counts.get("failed", 0) or 0)
    if run.status == "partial" and latest and not not_reached and not build_failed:
        return None  # the retries have reached every endpoint since
    commune_of = {e.name: c for c in deployment.communes for e in c.endpoints}
    names = [f"{e} (xã {commune_of[e].name})" if e in commune_of else e for e in not_reached]
    what = "thất bại" if run.status == "failed" else "chưa trọn vẹn"
    detail = []
    if names:
        detail.append(f"chưa gửi tới được: {', '.join(names)}")
    if build_failed:
        detail.append(f"{build_failed} chương trình không dựng được")
    if run.status == "failed" and run.failures:
        first = run.failures[0]
        detail.append(f"lỗi: {first.get('what', '')!s}: {str(first.get('error', ''))[:200]}")
    message = f"Lượt chạy đêm #{run.id} cho ngày {run.date:%d/%m/%Y} {what}"
    if detail:
        message += "; " + "; ".join(detail)
    return Condition(f"nightly:{run.date.isoformat()}", "nightly", message)


def silent_conditions(
    db: Database, deployment: Deployment, *, hours: float, now: dt.datetime, tz: ZoneInfo
) -> list[Condition]:
    latest: dict[str, tuple[dt.datetime, str]] = {}
    for commune, via, at in last_contacts(db, deployment):
        if commune not in latest or at > latest[commune][0]:
            latest[commune] = (at, via)
    out = []
    for c in deployment.communes:
        if c.code not in latest or not c.endpoints:
            continue  # never reached yet: nothing to compare with (the nightly alert names it)
        at, via = latest[c.code]
        silent = (now - at).total_seconds()
        if silent > hours * 3600:
            endpoints = ", ".join(e.name for e in c.endpoints)
            out.append(
                Condition(
                    f"silent:{c.code}",
                    "silent",
                    f"{c.kind.capitalize()} {c.name} ({c.code}) không liên lạc đã {_duration_vi(silent)}; "
                    f"lần cuối lúc {_local(at, tz)} ({VIA_VI.get(via, via)}); thiết bị: {endpoints}",
                )
            )
    return out


def emergency_conditions(db: Database, *, minutes: int, now: dt.datetime, tz: ZoneInfo) -> list[Condition]:
    out = []
    since = now - dt.timedelta(days=2)
    for e in ops_store.approved_emergencies(db, since=since, today=now.astimezone(tz).date()):
        if now - e.approved_at < dt.timedelta(minutes=minutes):
            continue
        latest = ops_store.latest_deliveries_for(db, f"emergency/{e.bulletin_id}")
        missing = sorted(name for name, status in latest.items() if status != "delivered")
        if latest and not missing:
            continue
        where = f"chưa tới: {', '.join(missing)}" if missing else "chưa gửi tới thiết bị nào"
        out.append(
            Condition(
                f"emergency:{e.bulletin_id}",
                "emergency",
                f"Bản tin khẩn cấp số {e.bulletin_id} «{e.title}» duyệt lúc {_local(e.approved_at, tz)} "
                f"sau {minutes} phút vẫn {where}",
            )
        )
    return out


def webhook_conditions(db: Database, *, minutes: int, now: dt.datetime, tz: ZoneInfo) -> list[Condition]:
    out = []
    for b in ops_store.webhook_backlog(db):
        if b.failing_since is None or now - b.failing_since < dt.timedelta(minutes=minutes):
            continue
        target = url_target(b.url)
        error = f"; lỗi gần nhất: {b.last_error[:200]}" if b.last_error else ""
        out.append(
            Condition(
                f"webhook:{target}",
                "webhook",
                f"Webhook tới {target} không gửi được từ {_local(b.failing_since, tz)}; "
                f"{b.pending} sự kiện đang chờ{error}",
            )
        )
    return out


def runner_conditions(settings: Settings, status: dict[str, Any] | None) -> list[Condition]:
    if settings.runner.kind != "celery" or status is None:
        return []
    if "error" in status:
        return [Condition("broker", "broker", f"Không kết nối được hàng đợi Celery ({status.get('broker')})")]
    if not alive_workers(status):
        return [
            Condition(
                "workers",
                "workers",
                f"Không có máy xử lý (Celery worker) nào còn gửi nhịp tim; hàng đợi {status.get('broker')}: "
                f"{status.get('pending', 0)} việc đang chờ",
            )
        ]
    return []


def disk_condition(settings: Settings) -> Condition | None:
    try:
        free = free_bytes(settings.data_dir)
    except OSError as exc:
        return Condition("disk", "disk", f"Không đọc được dung lượng trống của {settings.data_dir}: {exc}")
    if free >= settings.alerts.min_free_mb * 1024 * 1024:
        return None
    return Condition(
        "disk",
        "disk",
        f"Ổ đĩa chứa {settings.data_dir} chỉ còn {free // (1024 * 1024)} MB trống "
        f"(ngưỡng {settings.alerts.min_free_mb} MB)",
    )


def signing_key_condition(settings: Settings, db: Database) -> Condition | None:
    from pipeline.signing import load_key

    path = settings.signing_key_file
    if not path.exists() and not ops_store.count_rows(db, "deliveries"):
        return None  # a new installation: the first build makes the key
    try:
        load_key(path)
    except (LoaError, OSError) as exc:
        return Condition("signing-key", "signing-key", f"Không đọc được khóa ký chương trình {path}: {exc}")
    return None


def evaluate(
    settings: Settings,
    deployment: Deployment,
    db: Database,
    *,
    now: dt.datetime,
    runner_status: Callable[[Settings], dict[str, Any]] | None = None,
) -> list[Condition]:
    """Every condition that holds at ``now``."""
    tz = settings.tz
    a = settings.alerts
    found: list[Condition] = []
    nightly = nightly_condition(db, deployment, tz)
    found += [nightly] if nightly else []
    found += silent_conditions(db, deployment, hours=a.silent_commune_hours, now=now, tz=tz)
    found += emergency_conditions(db, minutes=a.emergency_confirm_minutes, now=now, tz=tz)
    found += webhook_conditions(db, minutes=a.webhook_failing_minutes, now=now, tz=tz)
    if settings.runner.kind == "celery":
        if runner_status is None:
            from pipeline.runner_celery import runner_status as celery_status

            found += runner_conditions(settings, celery_status(settings, ping=False))
        else:
            found += runner_conditions(settings, runner_status(settings))
    for single in (disk_condition(settings), signing_key_condition(settings, db)):
        if single is not None:
            found.append(single)
    return found


# --- state ------------------------------------------------------------------------------


def reconcile(
    conditions: Sequence[Condition], state: dict[str, ops_store.AlertState], *, now: dt.datetime, repeat: dt.timedelta
) -> list[Notice]:
    """What to send now, given what holds and what was sent before."""
    notices = []
    holding = {c.key: c for c in conditions}
    for c in conditions:
        old = state.get(c.key)
        if old is None or not old.active:
            notices.append(Notice(c.key, c.kind, FIRED, c.message))
        elif now - old.last_sent_at >= repeat:
            notices.append(Notice(c.key, c.kind, REPEAT, c.message))
    for key, old in sorted(state.items()):
        if old.active and key not in holding:
            notices.append(Notice(key, old.kind, RESOLVED, old.message))
    return notices


def _record(db: Database, notice: Notice, state: dict[str, ops_store.AlertState], now: dt.datetime) -> None:
    old = state.get(notice.key)
    if notice.state == FIRED:
        new = ops_store.AlertState(notice.key, notice.kind, notice.message, now, now, 1, None)
    elif old is not None and notice.state == REPEAT:
        new = replace(old, message=notice.message, last_sent_at=now, sends=old.sends + 1)
    elif old is not None:
        new = replace(old, last_sent_at=now, resolved_at=now)
    else:
        return
    ops_store.save_alert(db, new)


def webhook_event(db: Database, notice: Notice, *, now: dt.datetime) -> None:
    """A signed webhook event (``alert.fired`` / ``alert.resolved``) for the [[webhook]]s that want it."""
    kind = "alert.resolved" if notice.state == RESOLVED else "alert.fired"
    payload = {"key": notice.key, "kind": notice.kind, "state": notice.state, "message": notice.message}
    webhook_store.add_event(db, kind, payload)


def run_alerts(
    settings: Settings,
    deployment: Deployment,
    db: Database,
    *,
    now: dt.datetime,
    notify: Notifier | None = None,
    runner_status: Callable[[Settings], dict[str, Any]] | None = None,
) -> list[Notice]:
    """Evaluate, send what is due, save the state; the notices sent (a failed send is tried next time)."""
    from pipeline.ops.notify import apprise_notifier

    send = notify or apprise_notifier(settings)
    to_webhooks = settings.alerts.webhooks and any(k.startswith("alert.") for h in settings.webhook for k in h.events)
    conditions = evaluate(settings, deployment, db, now=now, runner_status=runner_status)
    state = ops_store.alerts(db)
    sent = []
    for notice in reconcile(conditions, state, now=now, repeat=dt.timedelta(minutes=settings.alerts.repeat_minutes)):
        delivered = send(notice) if send is not None else False
        if to_webhooks:
            webhook_event(db, notice, now=now)
            delivered = True  # in the outbox: the webhooks job sends it, with retries
        if send is None and not to_webhooks:
            log.warning("alert %s (%s): %s (no channel: set [alerts] urls)", notice.key, notice.state, notice.message)
            delivered = True
        if not delivered:
            log.warning(
                "alert %s (%s): no channel took it; tried again at the next evaluation", notice.key, notice.state
            )
            continue
        _record(db, notice, state, now)
        log.info("alert %s: %s", notice.key, notice.state)
        sent.append(notice)
    return sent
