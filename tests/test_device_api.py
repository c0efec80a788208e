"""The pull API's device side: enrollment codes from the web, the server's time, heartbeats on the
device health and operator pages, emergencies by long-poll, token rotation."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from loa_protocol.client import PullClient
from loa_protocol.errors import EnrollmentRefused, TokenRefused

from tests.device_support import ENDPOINT, Outbox, device_project
from tests.web_support import Web, logged_in_csrf, serve_project

CODE_RE = re.compile(r'id="enroll-code">([A-Z0-9-]+)<')


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    with serve_project(device_project(tmp_path / "p")) as web:
        yield web


def issue_code(web: Web, user: str = "duyet", endpoint: str = ENDPOINT) -> str:
    client = web.client(user)
    csrf = logged_in_csrf(client, "/devices")
    page = client.post(f"/devices/{endpoint}/code", data={"csrf_token": csrf})
    assert page.status_code == 200, page.text
    m = CODE_RE.search(page.text)
    assert m, "the page shows no code"
    return m.group(1)


def enroll(web: Web) -> str:
    with PullClient(web.url) as anon:
        return str(anon.enroll(issue_code(web))["token"])


def test_enrollment_code_works_once_and_is_refused_in_vietnamese_when_wrong_used_or_expired(web: Web) -> None:
    code = issue_code(web)
    with PullClient(web.url) as anon:
        with pytest.raises(EnrollmentRefused, match="Mã đăng ký không đúng") as wrong:
            anon.enroll("ABCD-EFGH-JKLM")
        assert wrong.value.fields["status"] == 400
        done = anon.enroll(code.lower())  # read aloud, typed in lower case: still the code
        assert done["endpoint"] == ENDPOINT and done["commune"] == "02641"
        assert "BEGIN PUBLIC KEY" in done["public_key"] and len(bytes.fromhex(done["receipt_key"])) == 32
        with pytest.raises(EnrollmentRefused, match="đã được dùng") as used:
            anon.enroll(code)
        assert used.value.fields["status"] == 409
        old = issue_code(web)
        with web.db.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE enrollment_codes SET expires_at = :t WHERE used_at IS NULL"),
                {"t": dt.datetime(2020, 1, 1)},
            )
        with pytest.raises(EnrollmentRefused, match="hết hạn") as expired:
            anon.enroll(old)
        assert expired.value.fields["status"] == 410
    with PullClient(web.url, done["token"]) as device:
        assert device.whoami()["endpoint"] == ENDPOINT


def test_only_approvers_and_admins_issue_codes(web: Web) -> None:
    client = web.client("bientap")
    csrf = logged_in_csrf(client, "/devices")
    assert client.post(f"/devices/{ENDPOINT}/code", data={"csrf_token": csrf}).status_code == 403
    operator = web.client("dai-yty")
    assert operator.get("/devices").status_code == 403


def test_heartbeat_shows_on_device_health_the_province_report_and_the_operator_page(web: Web) -> None:
    token = enroll(web)
    with PullClient(web.url, token) as device:
        t = device.server_time(dt.datetime.now(dt.UTC))
        assert abs(t.offset_s) < 5
        device.heartbeat(
            ENDPOINT,
            {
                "version": "0.1.0",
                "free_bytes": 3_200_000_000,
                "clock_offset_s": -125.0,
                "last_program": "02641/2026-12-08/morning",
                "last_played_at": "2026-12-08T05:30:01+07:00",
                "pending_receipts": 2,
            },
        )
    page = web.client("duyet").get("/devices").text
    row = page[page.index(f'id="device-{ENDPOINT}"') :]
    row = row[: row.index("</tr>")]
    assert "Đồng hồ lệch hơn 1 phút" in row and "3.2 GB" in row and "-125.0 giây" in row
    assert "02641/2026-12-08/morning" in row and ">2<" in row
    province = web.client("duyet").get("/reports").text
    assert "lệch giờ -125 giây" in province and "trống 3.2 GB" in province
    operator = web.client("dai-yty").get("/communes/02641").text
    assert "Thiết bị phát của xã" in operator and "cần chỉnh lại giờ" in operator and "còn trống 3.2 GB" in operator


def test_events_answer_at_once_when_an_emergency_arrives_or_is_cancelled(web: Web, tmp_path: Path) -> None:
    token = enroll(web)
    outbox = Outbox(web.project)
    with PullClient(web.url, token) as device:
        quiet = device.events(ENDPOINT, wait_s=0)
        assert quiet["emergencies"] == []
        now = dt.datetime.now(dt.UTC)
        expires = now + dt.timedelta(hours=6)
        started = time.monotonic()
        threading.Timer(1.5, lambda: outbox.emergency(7, now, b"ID3fake", ms=1000, expires=expires)).start()
        news = device.events(ENDPOINT, since=quiet["version"], wait_s=30)
        assert time.monotonic() - started < 20  # at once, not at the end of the wait
        assert [e["folder"] for e in news["emergencies"]] == ["emergency/7"]
        assert news["emergencies"][0]["cancelled"] is False
        outbox.emergency(7, now, b"ID3fake", ms=1000, expires=expires, cancelled=True)
        cancel = device.events(ENDPOINT, since=news["version"], wait_s=30)
        assert cancel["emergencies"][0]["cancelled"] is True
        same = device.events(ENDPOINT, since=cancel["version"], wait_s=1)
        assert same["version"] == cancel["version"]


def test_token_rotation_from_the_web(web: Web) -> None:
    old = enroll(web)
    with PullClient(web.url, old) as device:
        assert device.heartbeat_answer(ENDPOINT, {"version": "0.1.0"})["rotate"] is False
    admin = web.client("quantri")
    csrf = logged_in_csrf(admin, "/devices")
    assert admin.post(f"/devices/{ENDPOINT}/rotate", data={"csrf_token": csrf}).status_code == 303
    with PullClient(web.url, old) as device:
        assert device.heartbeat_answer(ENDPOINT, {"version": "0.1.0"})["rotate"] is True
        new = device.rotate_token(ENDPOINT)
        assert device.whoami()["endpoint"] == ENDPOINT  # the old one works until the new one is confirmed
    with PullClient(web.url, new) as device:
        assert device.confirm_token(ENDPOINT) == 1
        assert device.heartbeat_answer(ENDPOINT, {"version": "0.1.0"})["rotate"] is False
    with PullClient(web.url, old) as device, pytest.raises(TokenRefused):
        device.whoami()


def test_wrong_enrollment_codes_are_limited_per_client_and_overall(tmp_path: Path) -> None:
    project = device_project(tmp_path / "p")
    project.config.write_text(
        project.config.read_text(encoding="utf-8") + '[web]\ntrusted_proxies = ["127.0.0.1"]\n'
        "enroll_failures_per_client_per_hour = 3\nenroll_failures_per_hour = 5\n",
        encoding="utf-8",
    )
    with serve_project(project) as web:
        code = issue_code(web)

        def attempt(client: str, try_code: str) -> httpx.Response:
            return httpx.post(
                f"{web.url}/api/v1/enroll",
                json={"code": try_code},
                headers={"X-Forwarded-For": client},
                timeout=30,
            )

        assert [attempt("203.0.113.7", "ABCD-EFGH-JKLM").status_code for _ in range(3)] == [400, 400, 400]
        limited = attempt("203.0.113.7", code)  # even the right code waits: the guesser is not told
        assert limited.status_code == 429
        assert "quá nhiều lần" in limited.json()["detail"] and limited.json()["code"] == "enroll.too_many"
        assert 0 < int(limited.headers["retry-after"]) <= 3600
        # another address still may try; two more wrong codes reach the limit of everyone
        assert [attempt("198.51.100.9", "ABCD-EFGH-JKLM").status_code for _ in range(2)] == [400, 400]
        assert attempt("192.0.2.44", code).status_code == 429
        with web.db.engine.begin() as conn:
            used = conn.execute(sa.text("SELECT count(*) FROM enrollment_codes WHERE used_at IS NOT NULL")).scalar()
        assert used == 0
