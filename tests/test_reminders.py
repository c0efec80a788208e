"""Reminders to readers at a local SMTP server (aiosmtpd) and a local signed-webhook receiver:
asked once on submission and once on approval, told again before the deadline with the approver,
never twice — also when the scheduler is restarted."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from pipeline.lifecycle import actors
from pipeline.lifecycle import approve as lifecycle_approve
from pipeline.models import Recording
from pipeline.publish.webhooks import deliver_webhooks
from pipeline.reminders.due import first_airing, needing
from pipeline.reminders.send import run_reminders
from pipeline.scheduler.ops_jobs import ops_job
from pipeline.store import bulletins as bulletin_store
from pipeline.store import reminders as reminder_store
from pipeline.store import users as user_store
from pipeline.store.recordings import save_recording
from tests import test_ops_alerts
from tests.conftest import Project
from tests.ops_support import scheduler
from tests.test_ops_alerts import Channels, _heartbeat, wait_for
from tests.web_support import add_bulletin

pytestmark = [pytest.mark.audio]
channels = test_ops_alerts.channels  # the alerts' receivers: aiosmtpd and a signed-webhook receiver
Y_TY = "02641"


def _config(ch: Channels, *, before_hours: float) -> str:
    return (
        f'[reminders]\nsmtp_host = "127.0.0.1"\nsmtp_port = {ch.smtp_port}\nsmtp_from = "loa@laocai.example"\n'
        f'before_deadline_hours = {before_hours}\nweb_url = "https://loa.laocai.example"\n'
        "[outbound]\nallow_loopback = true\n"
        f'[[webhook]]\nurl = "{ch.hook_url}"\nsecret_file = "{ch.secret_file}"\n'
        'events = ["reading.requested", "reading.due"]\nbackoff_s = 0\ntimeout_s = 5\n'
    )


def _people(project: Project) -> None:
    db = project.db()
    try:
        for name, role, langs, scope, group in [
            ("doc-mong", "reader", ("hmn",), ("bat-xat",), None),
            ("doc-ban-lau", "reader", ("hmn",), ("02695",), None),  # Bản Lầu needs no Mông: never told
            ("duyet", "approver", (), (), "bat-xat"),
        ]:
            user_store.add_user(db, name, password_hash="x", role=role, languages=langs, scope=scope, group=group)
            reminder_store.set_email(db, name, f"{name}@laocai.example")
    finally:
        db.close()


def _run(project: Project, now: dt.datetime) -> list[tuple[str, str]]:
    db = project.db()  # a new connection each time, as after a restart
    try:
        return run_reminders(project.settings, project.deployment, db, now=now)
    finally:
        db.close()


def _deadline(project: Project, bid: int, now: dt.datetime) -> dt.datetime:
    db = project.db()
    try:
        b = bulletin_store.get_bulletin(db, bid)
    finally:
        db.close()
    airing = first_airing(
        b, needing(b, project.deployment, "hmn"), nightly=project.settings.nightly.time, now=now, tz=project.settings.tz
    )
    assert airing is not None
    return airing[1]


def test_readers_are_asked_then_reminded_each_once(small: Project, channels: Channels) -> None:
    small.config.write_text(small.config.read_text(encoding="utf-8") + _config(channels, before_hours=12))
    _people(small)
    db = small.db()
    try:
        bid = add_bulletin(db, small.deployment, small.settings, targets='["all"]', approve=False)
    finally:
        db.close()
    now = dt.datetime.now(dt.UTC)
    deadline = _deadline(small, bid, now)
    early = deadline - dt.timedelta(hours=13)

    assert _run(small, early) == [(f"asked:{bid}:draft:hmn", "webhook"), (f"asked:{bid}:draft:hmn", "doc-mong")]
    wait_for(lambda: len(channels.inbox.messages) == 1)
    msg = channels.inbox.messages[0]
    assert str(msg["to"]) == "doc-mong@laocai.example"
    assert str(msg["subject"]) == "[Loa] Cần bản đọc Tiếng Mông: «Họp thôn về gia hạn thẻ BHYT»"
    body = channels.inbox.bodies()[0]
    assert "vừa được gửi duyệt" in body and "Y Tý" in body and "Bản Lầu" not in body
    assert f"{deadline.astimezone(small.settings.tz):%H:%M ngày %d/%m/%Y}" in body
    assert "https://loa.laocai.example/readings" in body
    assert _run(small, early) == []  # evaluated again a minute later, or after a restart: not again

    db = small.db()
    try:
        approver = actors.web_user(user_store.user_by_name(db, "duyet"), small.deployment)
        lifecycle_approve(db, approver, bid, deployment=small.deployment)
    finally:
        db.close()
    assert _run(small, early) == [
        (f"asked:{bid}:approved:hmn", "webhook"),
        (f"asked:{bid}:approved:hmn", "doc-mong"),
    ]
    assert _run(small, deadline - dt.timedelta(hours=12, minutes=1)) == []  # not yet within 12 hours

    near = deadline - dt.timedelta(hours=11)
    stamp = deadline.astimezone(small.settings.tz).strftime("%Y-%m-%dT%H:%M")
    due = f"due:{bid}:hmn:{stamp}"
    assert _run(small, near) == [(due, "webhook"), (due, "doc-mong"), (due, "duyet")]
    assert _run(small, near) == []
    assert _run(small, near + dt.timedelta(minutes=30)) == []
    wait_for(lambda: len(channels.inbox.messages) == 4)
    assert [str(m["to"]) for m in channels.inbox.messages[2:]] == ["doc-mong@laocai.example", "duyet@laocai.example"]
    assert all(
        str(m["subject"]).startswith("[Loa] NHẮC LẠI: vẫn thiếu bản đọc Tiếng Mông")
        for m in channels.inbox.messages[2:]
    )

    db = small.db()
    try:
        deliver_webhooks(db, small.settings)
        deliver_webhooks(db, small.settings)  # nothing is sent twice
    finally:
        db.close()
    events = channels.events()
    assert [(e["type"], e["data"]["status"]) for e in events] == [  # type: ignore[index]
        ("reading.requested", "draft"),
        ("reading.requested", "approved"),
        ("reading.due", "approved"),
    ]
    assert events[2]["data"]["recipients"] == ["doc-mong", "duyet"]  # type: ignore[index]
    assert all(e["data"]["language"] == "hmn" and e["data"]["bulletin"] == bid for e in events)  # type: ignore[index]


def test_a_reading_attached_stops_the_reminders(small: Project, channels: Channels) -> None:
    small.config.write_text(small.config.read_text(encoding="utf-8") + _config(channels, before_hours=12))
    _people(small)
    db = small.db()
    try:
        bid = add_bulletin(db, small.deployment, small.settings, targets='["all"]', approve=False)
        wav = small.root / "r.wav"
        wav.write_bytes(b"RIFF")
        rec = Recording(
            bulletin_id=bid, language="hmn", path=wav, duration_ms=1000, sha256="0" * 64, original_name="r.wav"
        )
        save_recording(db, rec)
    finally:
        db.close()
    now = dt.datetime.now(dt.UTC)
    assert _run(small, now) == []
    assert _run(small, now + dt.timedelta(days=1, hours=5)) == []


def test_a_real_scheduler_restart_sends_each_reminder_once(small: Project, channels: Channels, tmp_path: Path) -> None:
    """`loa scheduler` twice: the request and the reminder before the deadline arrive once each."""
    small.config.write_text(small.config.read_text(encoding="utf-8") + _config(channels, before_hours=24 * 3))
    _people(small)
    db = small.db()
    try:
        add_bulletin(db, small.deployment, small.settings, targets=f'["{Y_TY}"]', approve=False)
    finally:
        db.close()

    def sent() -> int:
        db = small.db()
        try:
            return len(reminder_store.history(db))
        finally:
            db.close()

    log = tmp_path / "scheduler.log"
    with scheduler(small, log):
        wait_for(lambda: len(channels.inbox.messages) == 3, timeout=180)  # asked (reader), due (reader, approver)
    assert sent() == 5  # and the two webhook events
    restarted = dt.datetime.now(dt.UTC)
    with scheduler(small, log):
        wait_for(lambda: (_heartbeat(small) or restarted) > restarted, timeout=180)
        time.sleep(5)  # the same job run evaluates the reminders right after its heartbeat and alerts
    ops_job(str(small.config))  # and once more by hand
    assert sent() == 5
    assert len(channels.inbox.messages) == 3, [str(m["subject"]) for m in channels.inbox.messages]
