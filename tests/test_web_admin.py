"""Management in the UI and the CLI: users, endpoint tokens, own password; the audit log of a day's work."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

import httpx
import pytest

from pipeline.errors import StoreError
from pipeline.store import audit
from pipeline.store import tokens as token_store
from pipeline.store import users as user_store
from tests.conftest import CliResult, Project
from tests.web_support import PASSWORD, Web, csrf_of, login, standard_users


def _post(client: httpx.Client, page_url: str, url: str, data: dict[str, str]) -> httpx.Response:
    token = csrf_of(client.get(page_url).text)
    return client.post(url, data=data | {"csrf_token": token})


def test_an_admin_manages_users_in_the_ui(web: Web) -> None:
    admin = web.client("quantri")
    r = _post(
        admin,
        "/admin/users",
        "/admin/users",
        {"name": "dai-yty-2", "role": "operator", "scope": "commune:02641", "password": "mật-khẩu-dài-đủ"},
    )
    assert r.status_code == 303
    new = user_store.user_by_name(web.db, "dai-yty-2")
    assert (new.role, new.commune) == ("operator", "02641")
    # an operator without a commune is refused, in Vietnamese
    r = _post(
        admin, "/admin/users", "/admin/users", {"name": "x", "role": "operator", "scope": "", "password": "y" * 12}
    )
    assert r.status_code == 400 and "phải gắn với một xã" in r.text
    # role and scope
    r = _post(admin, "/admin/users", f"/admin/users/{new.id}", {"role": "editor", "scope": "group:bat-xat"})
    assert r.status_code == 303 and user_store.user_by_name(web.db, "dai-yty-2").group == "bat-xat"
    # the user logs in, then is disabled: the session ends at once
    other = web.client()
    assert login(other, "dai-yty-2", "mật-khẩu-dài-đủ").status_code == 303
    assert other.get("/bulletins").status_code == 200
    assert _post(admin, "/admin/users", f"/admin/users/{new.id}/disable", {}).status_code == 303
    assert other.get("/bulletins").status_code == 303  # back to the login page
    assert login(other, "dai-yty-2", "mật-khẩu-dài-đủ").status_code == 401
    assert _post(admin, "/admin/users", f"/admin/users/{new.id}/enable", {}).status_code == 303
    # reset password
    assert (
        _post(admin, "/admin/users", f"/admin/users/{new.id}/password", {"password": "mới-mới-mới-123"}).status_code
        == 303
    )
    assert login(other, "dai-yty-2", "mật-khẩu-dài-đủ").status_code == 401
    assert login(other, "dai-yty-2", "mới-mới-mới-123").status_code == 303
    # not for editors
    assert web.client("bientap").get("/admin/users").status_code == 403


def test_tokens_are_shown_once_listed_and_revoked(web: Web) -> None:
    admin = web.client("quantri")
    r = _post(admin, "/admin/tokens", "/admin/tokens", {"endpoint": "y-ty-loa"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    token = re.search(r'<code id="token-value">([^<]+)</code>', r.text)[1]  # type: ignore[index]
    pull = httpx.Client(base_url=web.url, headers={"authorization": f"Bearer {token}"})
    web.clients.append(pull)
    assert pull.get("/api/v1/me").json()["endpoint"] == "y-ty-loa"
    listing = admin.get("/admin/tokens").text
    assert token not in listing and "y-ty-loa" in listing and "Y Tý" in listing
    [tok] = token_store.list_tokens(web.db, "endpoint")
    assert _post(admin, "/admin/tokens", f"/admin/tokens/{tok.id}/revoke", {}).status_code == 303
    assert pull.get("/api/v1/me").status_code == 401


def test_everyone_changes_their_own_password(web: Web) -> None:
    me = web.client("dai-yty")
    r = _post(me, "/account", "/account/password", {"current": "sai", "new": "x" * 12, "confirm": "x" * 12})
    assert r.status_code == 400 and "Mật khẩu hiện tại không đúng" in r.text
    r = _post(me, "/account", "/account/password", {"current": PASSWORD, "new": "x" * 12, "confirm": "y" * 12})
    assert r.status_code == 400 and "không giống nhau" in r.text
    r = _post(
        me, "/account", "/account/password", {"current": PASSWORD, "new": "mật-khẩu-mới-9", "confirm": "mật-khẩu-mới-9"}
    )
    assert r.status_code == 200 and "Đã đổi mật khẩu" in r.text
    assert me.get("/account").status_code == 200  # this session stays
    assert login(web.client(), "dai-yty", "mật-khẩu-mới-9").status_code == 303


def test_the_audit_log_after_a_day_of_work(web: Web) -> None:
    """Log in wrong and right, write, approve, withdraw, manage: each lands once in the log and the CSV."""
    assert login(web.client(), "bientap", "sai-mật-khẩu").status_code == 401
    editor = web.client("bientap")
    form = {
        "title": "Lịch tiêm phòng",
        "category": "notice",
        "priority": "routine",
        "source": "Trạm Y tế xã Y Tý",
        "reference": "",
        "valid_from": "2026-12-01",
        "valid_until": "2026-12-10",
        "targets": "02641",
        "languages": ["vi"],
        "body": "Tiêm phòng sởi ngày 05/12/2026.",
    }
    r = _post(editor, "/bulletins/new", "/bulletins/new", form)  # type: ignore[arg-type]
    assert r.status_code == 303
    bid = int(r.headers["location"].rsplit("/", 1)[1])
    approver = web.client("duyet")
    page = approver.get(f"/bulletins/{bid}/approve").text  # no Mông reading: the confirmation page
    token = re.search(r'name="action_token" value="([^"]+)"', page)[1]  # type: ignore[index]
    form = {"csrf_token": csrf_of(page), "action_token": token, "confirm_missing": "hmn"}
    assert approver.post(f"/bulletins/{bid}/approve", data=form).status_code == 303
    page = approver.get(f"/bulletins/{bid}").text
    token = re.search(r'name="action_token" value="([^"]+)"', page)[1]  # type: ignore[index]
    assert (
        approver.post(
            f"/bulletins/{bid}/withdraw", data={"csrf_token": csrf_of(page), "action_token": token}
        ).status_code
        == 303
    )
    admin = web.client("quantri")
    _post(admin, "/admin/tokens", "/admin/tokens", {"endpoint": "y-ty-loa"})
    actions = [(e.actor, e.action) for e in reversed(audit.entries(web.db))]
    assert actions == [
        ("bientap", "login.failed"),
        ("bientap", "login.ok"),
        ("bientap", "bulletin.added"),
        ("duyet", "login.ok"),
        ("duyet", "bulletin.approved"),
        ("duyet", "bulletin.approved_missing"),  # confirmed without a Mông reading
        ("duyet", "bulletin.withdrawn"),
        ("quantri", "login.ok"),
        ("quantri", "token.issued"),
    ]
    page = admin.get("/admin/audit").text
    assert (
        "Duyệt bản tin" in page
        and "Duyệt khi còn thiếu bản đọc" in page
        and "Đăng nhập sai" in page
        and f"bulletin:{bid}" in page
    )
    r = admin.get("/admin/audit.csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["id", "at_utc", "actor", "action"] and len(rows) == 1 + len(actions)
    assert approver.get("/admin/audit.csv").status_code == 403
    # append-only: the database itself refuses to change or delete an entry
    t = web.db.table("audit_log")
    with pytest.raises(StoreError, match="append-only"), web.db.begin() as conn:
        conn.execute(t.delete())
    with pytest.raises(StoreError, match="append-only"), web.db.begin() as conn:
        conn.execute(t.update().values(actor="ai-do"))
    assert len(audit.entries(web.db)) == len(actions)


def test_cli_user_and_token_commands(small: Project, small_cli: Callable[..., CliResult]) -> None:
    db = small.db()
    standard_users(db)
    assert small_cli("token", "create", "y-ty-loa").code == 0
    listed = small_cli("user", "list", "--json")
    assert listed.code == 0 and '"bientap"' in listed.out
    assert small_cli("user", "disable", "bientap").code == 0
    assert user_store.user_by_name(db, "bientap").disabled
    assert small_cli("user", "disable", "bientap", "--enable").code == 0
    assert not user_store.user_by_name(db, "bientap").disabled
    assert small_cli("user", "disable", "khong-co").code == 2
    assert small_cli("user", "unlock", "bientap").code == 2  # not locked
    user_store.lock_account(db, "bientap", failures=30)
    assert "locked since" in small_cli("user", "list").out
    assert small_cli("user", "unlock", "bientap").code == 0 and user_store.account_locked(db, "bientap") is None
    tokens = small_cli("token", "list", "--json")
    assert tokens.code == 0 and '"y-ty-loa"' in tokens.out
    [tok] = token_store.list_tokens(db, "endpoint")
    assert small_cli("token", "revoke", str(tok.id)).code == 0
    assert token_store.list_tokens(db, "endpoint")[0].revoked_at is not None
    assert small_cli("token", "revoke", "999").code == 2
    actions = [e.action for e in reversed(audit.entries(db))]
    assert actions[0] == "token.issued" and actions[-2:] == ["user.unlocked", "token.revoked"]
