"""Signed webhooks against a local receiver: approval, airing, withdrawal; down then up; never twice."""

from __future__ import annotations

import datetime as dt
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.publish.webhooks import deliver_webhooks, program_aired, sign, verify_signature
from pipeline.store import bulletins as bulletin_store
from pipeline.store.webhooks import list_deliveries, list_events
from tests.conftest import Project
from tests.fake_http import FakeHttp, status
from tests.publish_support import bulletin_file, local_today, publish_project, store_bulletin
from tests.web_support import csrf_of, free_port, serve_project, standard_users

SECRET = "bí-mật-của-cổng-thông-tin"
ENV = {"PORTAL_HOOK_SECRET": SECRET}


def hooked_project(root: Path, voices: Path, url: str, *, max_attempts: int = 5) -> Project:
    project = publish_project(root, voices)
    with project.config.open("a", encoding="utf-8") as f:
        f.write(
            f'[[webhook]]\nurl = "{url}"\nsecret_env = "PORTAL_HOOK_SECRET"\n'
            f"backoff_s = 0\nmax_attempts = {max_attempts}\ntimeout_s = 5\n"
            "[outbound]\nallow_loopback = true\n"  # the receiver listens on 127.0.0.1
        )
    return project


@pytest.fixture
def port() -> Iterator[int]:
    yield free_port()


def test_signed_events_down_then_up_nothing_lost_nothing_twice(
    tmp_path: Path, voices_with_placeholders: Path, port: int
) -> None:
    url = f"http://127.0.0.1:{port}/loa"
    project = hooked_project(tmp_path / "p", voices_with_placeholders, url)
    db = project.db()
    standard_users(db)
    today = local_today(project.settings)
    end = today + dt.timedelta(days=7)
    public = store_bulletin(db, project.deployment, bulletin_file(start=today, end=end), approve=False)
    internal = store_bulletin(
        db,
        project.deployment,
        bulletin_file(title="Tin nội bộ", start=today, end=end, public=False),
        approve=False,
    )
    db.close()
    with serve_project(project) as web:
        # approval in the web (the approver's real form), withdrawal from the store, airing from delivery
        approver = web.client("duyet")
        token = csrf_of(approver.get(f"/bulletins/{public}").text)
        form = {"csrf_token": token, "confirm_missing": "hmn"}  # approved knowing Mông has no reading
        assert approver.post(f"/bulletins/{public}/approve", data=form).status_code == 303
        assert approver.post(f"/bulletins/{internal}/approve", data=form).status_code == 303
        slot_start = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(17, 0), tzinfo=project.settings.tz)
        first = program_aired(
            web.db, program_id=f"02641/{today}/evening", commune="02641", start=slot_start, bulletin_ids=[public]
        )
        again = program_aired(
            web.db, program_id=f"02641/{today}/evening", commune="02641", start=slot_start, bulletin_ids=[public]
        )
        assert first == again  # a re-push records nothing new
        assert program_aired(web.db, program_id="x", commune="02641", start=slot_start, bulletin_ids=[internal]) is None
        bulletin_store.withdraw(web.db, public)
        kinds = [e.kind for e in list_events(web.db)]
        assert kinds == ["bulletin.approved", "program.aired", "bulletin.withdrawn"]  # none for the internal one

        # the receiver is down: every attempt fails and is recorded with the reason
        down = deliver_webhooks(web.db, project.settings, environ=ENV)
        assert (down.delivered, down.retrying, down.failed) == (0, 3, 0)
        rows = list_deliveries(web.db)
        assert {(d.status, d.attempts) for d in rows} == {("pending", 1)}
        assert all("ConnectError" in (d.last_error or "") for d in rows)

        # the receiver comes up: all three arrive, signed, once
        receiver = FakeHttp(status(200), port=port)
        try:
            up = deliver_webhooks(web.db, project.settings, environ=ENV)
            assert (up.delivered, up.retrying, up.failed) == (3, 0, 0)
            assert deliver_webhooks(web.db, project.settings, environ=ENV).delivered == 0
            assert deliver_webhooks(web.db, project.settings, environ=ENV).delivered == 0
        finally:
            receiver.close()
        assert len(receiver.requests) == 3
        ids = [r.headers["loa-event-id"] for r in receiver.requests]
        assert len(set(ids)) == 3
        got = {}
        for headers, body in ((r.headers, r.body) for r in receiver.requests):
            assert verify_signature(SECRET.encode(), headers["loa-signature"], body)
            assert not verify_signature(b"wrong secret", headers["loa-signature"], body)
            assert not verify_signature(SECRET.encode(), headers["loa-signature"], body.replace(b"1", b"2"))
            event = json.loads(body)
            assert event["id"] == headers["loa-event-id"] and event["type"] == headers["loa-event-type"]
            got[event["type"]] = event
        assert set(got) == {"bulletin.approved", "program.aired", "bulletin.withdrawn"}
        assert got["bulletin.approved"]["data"]["bulletin"]["id"] == public
        assert got["program.aired"]["data"]["program"]["commune"] == "02641"
        assert got["program.aired"]["data"]["bulletins"][0]["id"] == public
        assert {(d.status, d.attempts) for d in list_deliveries(web.db)} == {("delivered", 2)}

        # admins see it; an editor may not
        admin = web.client("quantri")
        page = admin.get("/admin/webhooks")
        assert page.status_code == 200 and page.text.count("Đã nhận") >= 3 and url in page.text
        assert web.client("bientap").get("/admin/webhooks").status_code == 403


def test_a_receiver_that_keeps_failing_is_marked_failed_with_the_reason(
    tmp_path: Path, voices_with_placeholders: Path, port: int
) -> None:
    url = f"http://127.0.0.1:{port}/loa"
    project = hooked_project(tmp_path / "p", voices_with_placeholders, url, max_attempts=2)
    db = project.db()
    try:
        today = local_today(project.settings)
        store_bulletin(db, project.deployment, bulletin_file(start=today, end=today))
        receiver = FakeHttp(status(500), port=port)
        try:
            first = deliver_webhooks(db, project.settings, environ=ENV)
            second = deliver_webhooks(db, project.settings, environ=ENV)
            third = deliver_webhooks(db, project.settings, environ=ENV)
        finally:
            receiver.close()
        assert (first.retrying, second.failed, third.delivered + third.failed + third.retrying) == (1, 1, 0)
        [d] = list_deliveries(db)
        assert (d.status, d.attempts, d.response_status, d.last_error) == (
            "failed",
            2,
            500,
            "HTTP 500 from the receiver",
        )
        assert len(receiver.requests) == 2
    finally:
        db.close()


def test_program_aired_is_sent_when_the_program_has_aired_not_when_delivered(
    tmp_path: Path, voices_with_placeholders: Path, port: int
) -> None:
    """Delivered hours before its slot, the event waits for the slot's start, as the archive does."""
    url = f"http://127.0.0.1:{port}/loa"
    project = hooked_project(tmp_path / "p", voices_with_placeholders, url)
    db = project.db()
    receiver = FakeHttp(status(200), port=port)
    try:
        today = local_today(project.settings)
        public = store_bulletin(db, project.deployment, bulletin_file(start=today, end=today))
        deliver_webhooks(db, project.settings, environ=ENV)  # the approval goes out
        receiver.requests.clear()
        now = dt.datetime.now(project.settings.tz).replace(microsecond=0)
        later, earlier = now + dt.timedelta(hours=2), now - dt.timedelta(minutes=1)
        program_aired(db, program_id="02641/later", commune="02641", start=later, bulletin_ids=[public])
        program_aired(db, program_id="02641/earlier", commune="02641", start=earlier, bulletin_ids=[public])
        report = deliver_webhooks(db, project.settings, environ=ENV)
        assert report.delivered == 1 and len(receiver.requests) == 1
        sent = json.loads(receiver.requests[0].body)
        assert sent["type"] == "program.aired" and sent["data"]["program"]["id"] == "02641/earlier"
        [waiting] = [d for d in list_deliveries(db) if d.status == "pending"]
        assert waiting.event.payload["program"]["id"] == "02641/later"
        assert waiting.next_attempt_at == later.astimezone(dt.UTC) and waiting.attempts == 0
        assert deliver_webhooks(db, project.settings, environ=ENV).delivered == 0  # still not aired
    finally:
        receiver.close()
        db.close()


def test_a_missing_secret_stops_before_anything_is_sent(
    tmp_path: Path, voices_with_placeholders: Path, port: int
) -> None:
    from pipeline.errors import ConfigError

    project = hooked_project(tmp_path / "p", voices_with_placeholders, f"http://127.0.0.1:{port}/loa")
    db = project.db()
    try:
        with pytest.raises(ConfigError, match="PORTAL_HOOK_SECRET"):
            deliver_webhooks(db, project.settings, environ={})
    finally:
        db.close()


def test_signature_format_is_what_the_docs_say() -> None:
    header = sign(b"k", b'{"a":1}', timestamp=1_700_000_000)
    assert header == "t=1700000000,v1=" + hmac.new(b"k", b'1700000000.{"a":1}', "sha256").hexdigest()
    assert verify_signature(b"k", header, b'{"a":1}', now=1_700_000_100)
    assert not verify_signature(b"k", header, b'{"a":1}', now=1_700_000_000 + 301)  # too old: replay refused
    assert not verify_signature(b"k", "garbage", b'{"a":1}')
