"""Login limits and forwarded headers, cache and security headers, HEAD, Vietnamese errors."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.store import audit
from pipeline.store import bulletins as bulletin_store
from pipeline.store import users as user_store
from pipeline.web.clientaddr import forwarded_client, parse_networks
from tests.web_support import (
    PASSWORD,
    Web,
    add_bulletin,
    csrf_of,
    logged_in_csrf,
    login,
    serve_project,
    small_project,
    standard_users,
)


def _attempt(client: httpx.Client, name: str, password: str, xff: str | None = None) -> httpx.Response:
    page = client.get("/login")
    headers = {"x-forwarded-for": xff} if xff else {}
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": csrf_of(page.text), "next": "/"},
        headers=headers,
    )


@contextlib.contextmanager
def _served(tmp_path: Path, voices: Path, web_toml: str) -> Iterator[Web]:
    project = small_project(tmp_path / "p", voices)
    with project.config.open("a", encoding="utf-8") as f:
        f.write(f"[web]\n{web_toml}\n")
    db = project.db()
    standard_users(db)
    db.close()
    with serve_project(project) as web:
        yield web


def test_rotating_x_forwarded_for_does_not_escape_the_limit(web: Web) -> None:
    """No trusted proxy configured: the header is ignored, the peer address is counted."""
    client = web.client()
    codes = [_attempt(client, "duyet", "sai", xff=f"203.0.113.{i}").status_code for i in range(6)]
    assert codes == [401] * 5 + [429]
    assert {e.client for e in audit.entries(web.db, action="login.failed")} == {"127.0.0.1"}


def test_rotating_user_names_from_one_client_is_limited(web: Web) -> None:
    client = web.client()
    codes = [_attempt(client, f"khong-co-{i}", "sai").status_code for i in range(21)]
    assert codes[:20] == [401] * 20 and codes[20] == 429  # per client: 4 × 5 a minute, whatever the name


def test_behind_a_trusted_proxy_each_client_counts_and_the_account_backs_off(
    tmp_path: Path, voices_with_placeholders: Path
) -> None:
    with _served(
        tmp_path, voices_with_placeholders, 'trusted_proxies = ["127.0.0.1"]\nlogin_account_failures = 6'
    ) as web:
        client = web.client()
        # forwarded addresses are believed from the proxy: another client is not slowed by the first
        codes = [_attempt(client, "duyet", "sai", xff="198.51.100.7").status_code for _ in range(6)]
        assert codes == [401] * 5 + [429]
        assert _attempt(client, "duyet", "sai", xff="198.51.100.8").status_code == 401
        assert "198.51.100.7" in {e.client for e in audit.entries(web.db, action="login.failed")}
        # ... but rotating addresses does not help against one account: it backs off
        blocked = _attempt(client, "duyet", PASSWORD, xff="198.51.100.9")
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
        assert _attempt(client, "bientap", PASSWORD, xff="198.51.100.10").status_code == 303


def test_forwarded_chain_takes_the_last_untrusted_hop() -> None:
    nets = parse_networks(["10.0.0.0/8", "127.0.0.1"])
    assert forwarded_client("127.0.0.1", "1.2.3.4, 10.1.1.1", nets) == "1.2.3.4"
    assert forwarded_client("127.0.0.1", "6.6.6.6, 1.2.3.4", nets) == "1.2.3.4"  # a forged left part is ignored
    assert forwarded_client("192.0.2.1", "1.2.3.4", nets) == "192.0.2.1"  # not from a proxy: ignored
    assert forwarded_client("127.0.0.1", "garbage", nets) == "127.0.0.1"


def test_an_account_is_locked_after_many_failures_and_an_admin_unlocks_it(
    tmp_path: Path, voices_with_placeholders: Path
) -> None:
    toml = 'trusted_proxies = ["127.0.0.1"]\nlogin_account_failures = 50\nlogin_lockout_failures = 4'
    with _served(tmp_path, voices_with_placeholders, toml) as web:
        client = web.client()
        for i in range(4):
            assert _attempt(client, "bientap", "sai", xff=f"198.51.100.{i}").status_code == 401
        locked = _attempt(client, "bientap", PASSWORD, xff="198.51.100.99")
        assert locked.status_code == 423 and "quản trị viên mở khóa" in locked.text
        assert user_store.account_locked(web.db, "bientap") is not None
        admin = web.client("quantri")
        page = admin.get("/admin/users").text
        assert "Mở khóa đăng nhập" in page
        uid = user_store.user_by_name(web.db, "bientap").id
        r = admin.post(f"/admin/users/{uid}/unlock", data={"csrf_token": csrf_of(page)})
        assert r.status_code == 303
        assert _attempt(client, "bientap", PASSWORD, xff="198.51.100.99").status_code == 303
        actions = [e.action for e in audit.entries(web.db)]
        assert "login.locked" in actions and "user.unlocked" in actions


# --- headers, HEAD ------------------------------------------------------------------


def test_pages_are_not_stored_and_carry_the_security_headers(web: Web) -> None:
    client = web.client("duyet")
    for path in ("/bulletins", "/login", "/account", "/nope"):
        r = client.get(path)
        assert r.headers["cache-control"] == "no-store", path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp and "script-src 'self'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
        assert not re.search(r"<script>|<script(?![^>]*\bsrc=)|\son\w+=", r.text), path  # no inline scripts
    assert "no-store" not in web.client().get("/static/style.css").headers.get("cache-control", "")


def test_head_works_where_get_does(web: Web) -> None:
    client = web.client("duyet")
    for path in ("/bulletins", "/login", "/healthz", "/static/style.css"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
    assert web.client().head("/bulletins").status_code == 303  # still needs a login


# --- Vietnamese errors, no 500 for odd input -----------------------------------------

ODD = [
    "/bulletins/99999999999999999999999999",
    "/bulletins/-1",
    "/bulletins/abc",
    "/bulletins?date_from=0001-01-01&date_to=9999-12-31",
    "/bulletins?date_from=99999-99-99&status=%ff%fe",
    "/bulletins?%zz=%%%&&==",
    "/communes/02641/days/0001-01-01",
    "/communes/02641/days/9999-12-31",
    "/communes/02641/days/2026-13-45",
    "/preview?bulletin=99999999999999999999&commune=02641&slot=morning",
    "/preview?date=0001-01-01&commune=02641&slot=morning",
    "/actions/" + "z" * 40,
    "/admin/audit?action=%00&actor=" + "x" * 5000,
    "/trang-khong-co",
]


@pytest.mark.parametrize("path", ODD)
def test_odd_input_gets_a_vietnamese_page_never_a_500(web: Web, path: str) -> None:
    client = web.client("quantri")
    r = client.get(path)
    assert r.status_code < 500, (path, r.status_code)
    assert r.headers["content-type"].startswith("text/html")
    if r.status_code >= 400:
        assert "Not Found" not in r.text and "Method Not Allowed" not in r.text
        assert "không" in r.text.lower() or "chưa" in r.text.lower()


def test_error_statuses_are_vietnamese_in_pages_and_in_the_api(web: Web) -> None:
    client = web.client("duyet")
    r = client.get("/khong-co-trang-nay")
    assert r.status_code == 404 and "Không tìm thấy trang này" in r.text and "<html" in r.text
    r = client.put("/bulletins")
    assert r.status_code == 405 and "Không thể làm việc này theo cách đó" in r.text
    r = client.get("/bulletins/khong-phai-so")
    assert r.status_code == 404 and "Thông tin gửi lên không hợp lệ" in r.text and "số bản tin" in r.text
    api = web.client()
    r = api.get("/api/khong-co")
    assert r.status_code == 404 and r.json()["detail"] == "Không tìm thấy trang này."
    r = api.get("/api/v1/me")
    assert r.status_code == 401 and "mã truy cập" in r.json()["detail"]
    r = api.get(
        "/api/v1/endpoints/y-ty-loa/programs", params={"date": "not-a-date"}, headers={"authorization": "Bearer x"}
    )
    assert r.status_code in (401, 422) and not r.json()["detail"].isascii(), r.text


def test_an_unexpected_failure_is_a_vietnamese_500(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.lifecycle import reads as bulletins

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bulletins, "list_bulletins", boom)
    r = web.client("duyet").get("/bulletins")
    assert r.status_code == 500 and "Máy chủ gặp lỗi" in r.text and "disk on fire" not in r.text
    token = logged_in_csrf(web.client("duyet"), "/account")
    assert token
    assert login(web.client(), "duyet").status_code == 303


def test_actions_that_cannot_be_done_say_why_and_do_nothing(web: Web) -> None:
    routine = add_bulletin(web.db, web.project.deployment, web.project.settings, title="Tin thường")
    approver = web.client("duyet")
    r = approver.get(f"/bulletins/{routine}/dispatch")
    assert r.status_code == 400 and "Chỉ bản tin hỏa tốc" in r.text
    page = approver.get(f"/bulletins/{routine}").text
    r = approver.post(f"/bulletins/{routine}/dispatch", data={"csrf_token": csrf_of(page), "action_token": "d" * 32})
    assert r.status_code == 400 and audit.entries(web.db, action="bulletin.dispatched") == []
    bulletin_store.withdraw(web.db, routine)
    r = approver.post(f"/bulletins/{routine}/approve", data={"csrf_token": csrf_of(page), "action_token": "e" * 32})
    assert r.status_code == 400 and "Không thể duyệt khi bản tin đã thu hồi" in r.text
    assert bulletin_store.get_bulletin(web.db, routine).status == "withdrawn"
    assert approver.get(f"/bulletins/{routine}/frobnicate").status_code == 404
