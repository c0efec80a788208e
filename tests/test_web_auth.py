"""Web security: sessions, CSRF, login rate limit, and role/scope checks on every route."""

from __future__ import annotations

import re
import time
import unicodedata

from fastapi.routing import APIRoute

from pipeline.store import bulletins as bulletin_store
from pipeline.web import api_public, routes_feeds, routes_public
from pipeline.web.app import ROUTERS, create_app
from pipeline.web.auth import SESSION_COOKIE, RateLimiter
from tests.web_support import (
    Web,
    add_bulletin,
    csrf_of,
    logged_in_csrf,
    login,
)


def test_secret_key_is_generated_private_and_kept(web: Web) -> None:
    key = web.project.settings.data_dir / "secret_key"
    assert key.stat().st_mode & 0o777 == 0o600
    first = key.read_bytes()
    assert len(first) >= 32
    create_app(web.project.settings, deployment=web.project.deployment, db=web.db)
    assert key.read_bytes() == first


def test_login_sets_a_safe_cookie_rotates_it_and_logout_ends_it(web: Web) -> None:
    client = web.client()
    client.cookies.set(SESSION_COOKIE, "planted-by-an-attacker", domain="127.0.0.1")
    r = login(client, "bientap")
    assert r.status_code == 303 and r.headers["location"] == "/bulletins"
    set_cookie = [v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith(SESSION_COOKIE)]
    assert set_cookie and "httponly" in set_cookie[0].lower() and "samesite=lax" in set_cookie[0].lower()
    first = client.cookies.get(SESSION_COOKIE)
    assert first and first != "planted-by-an-attacker"
    assert client.get("/bulletins").status_code == 200
    # logging in again gives a new session id (no fixation)
    login(client, "bientap")
    second = client.cookies.get(SESSION_COOKIE)
    assert second and second != first
    stolen = web.client()
    stolen.cookies.set(SESSION_COOKIE, first, domain="127.0.0.1")
    assert stolen.get("/bulletins").status_code == 303  # the old session is gone
    token = logged_in_csrf(client, "/bulletins")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    after = web.client()
    after.cookies.set(SESSION_COOKIE, second, domain="127.0.0.1")
    assert after.get("/bulletins").status_code == 303


def test_a_forged_session_cookie_is_refused(web: Web) -> None:
    client = web.client()
    login(client, "quantri")
    value = client.cookies.get(SESSION_COOKIE)
    assert value
    forged = web.client()
    forged.cookies.set(SESSION_COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"), domain="127.0.0.1")
    r = forged.get("/bulletins")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_a_form_without_its_csrf_token_is_refused(web: Web) -> None:
    client = web.client()
    login(client, "bientap")
    fields = {
        "title": "Tin thử CSRF",
        "category": "notice",
        "priority": "routine",
        "source": "UBND xã",
        "valid_from": "2026-12-01",
        "valid_until": "2026-12-02",
        "targets": "02641",
        "languages": "vi",
        "body": "Nội dung.",
    }
    assert client.post("/bulletins/new", data=fields).status_code == 403
    assert client.post("/bulletins/new", data=fields | {"csrf_token": "sai"}).status_code == 403
    assert bulletin_store.list_bulletins(web.db) == []
    ok = client.post("/bulletins/new", data=fields | {"csrf_token": logged_in_csrf(client, "/bulletins/new")})
    assert ok.status_code == 303
    assert [b.title for b in bulletin_store.list_bulletins(web.db)] == ["Tin thử CSRF"]
    # the login form has its own token (double-submit cookie)
    fresh = web.client()
    r = fresh.post("/login", data={"name": "bientap", "password": "x", "csrf_token": "khong-co"})
    assert r.status_code == 403 and SESSION_COOKIE not in fresh.cookies


def test_six_wrong_passwords_in_a_row_are_slowed_down(web: Web) -> None:
    client = web.client()
    codes = [login(client, "duyet", "sai-mat-khau").status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
    blocked = login(client, "duyet")  # even the right password waits now
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert "Hãy chờ" in blocked.text
    assert login(client, "bientap").status_code == 303  # another user is not affected


def test_anonymous_pages_go_to_login_and_api_wants_a_token(web: Web) -> None:
    client = web.client()
    r = client.get("/bulletins?status=draft")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fbulletins%3Fstatus%3Ddraft"
    assert client.get("/api/v1/endpoints/y-ty-loa/programs?date=2026-12-01").status_code == 401
    assert client.get("/healthz").status_code == 200
    page = client.get("/login")
    assert page.status_code == 200 and "Đăng nhập" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_login_next_never_leaves_the_site(web: Web) -> None:
    client = web.client()
    page = client.get("/login")
    r = client.post(
        "/login",
        data={
            "name": "duyet",
            "password": "mật-khẩu-thử-1234",
            "csrf_token": csrf_of(page.text),
            "next": "//evil.example",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/bulletins?status=draft"


# --- every route --------------------------------------------------------------------

PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/healthz"), ("GET", "/readyz")}
# /metrics answers loopback or a bearer token, not a login (tests/test_ops_web.py checks who it refuses)
PUBLIC |= {("GET", "/metrics")}
# a consultation's answer page, its QR code and poster are public by design (tests/test_consultation_web.py)
PUBLIC |= {("GET", "/y-kien/{code}"), ("POST", "/y-kien/{code}"), ("GET", "/y-kien/{code}/qr.svg")}
PUBLIC |= {("GET", "/y-kien/{code}/in")}
# a device reads the server's clock and trades a one-time code for its token (tests/test_device_api.py)
PUBLIC |= {("GET", "/api/v1/time"), ("POST", "/api/v1/enroll")}
PUBLIC |= {
    # published on purpose: the archive, the feeds and the public API (tests/test_publish.py)
    (m, r.path)
    for router in (routes_public.router, routes_feeds.router, api_public.router)
    for r in router.routes
    if isinstance(r, APIRoute)
    for m in r.methods
}


def _routes() -> list[tuple[str, str]]:
    out = []
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            out.extend((m, route.path) for m in sorted(route.methods))
    return sorted(out, key=lambda mp: mp[1] == "/logout")  # log out last


def _fill(path: str, *, bulletin: int) -> str:
    values = {
        "code": "02641",
        "bulletin_id": str(bulletin),
        "name": "y-ty-loa",
        "path:path": "media/x.mp3",
        "path": "media/x.mp3",
        "date": "2026-12-01",
        "slot": "morning",
        "language": "hmn",
        "action": "dispatch",
        "token": "a" * 32,
        "user_id": "1",
        "token_id": "1",
        "consultation_id": "1",
        "answer_id": "1",
        "take_id": "1",
        "fmt": "csv",
    }
    return re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], path)


def test_every_route_refuses_anonymous_and_the_wrong_commune(web: Web) -> None:
    """Walks app routes: none is open by accident; an operator of Bản Lầu sees nothing of Y Tý."""
    bid = add_bulletin(web.db, web.project.deployment, web.project.settings, targets='["02641"]')
    routes = _routes()
    assert len(routes) >= 20
    anon = web.client()
    operator = web.client()
    login(operator, "dai-banlau")
    token = logged_in_csrf(operator, "/communes/02695")
    checked = 0
    for method, template in routes:
        if (method, template) in PUBLIC:
            continue
        url = _fill(template, bulletin=bid)
        query = "?date=2026-12-01&commune=02641&slot=morning" if "?" not in url else ""
        r = anon.request(method, url + query, data={"csrf_token": "x"} if method == "POST" else None)
        if template.startswith("/api/"):
            assert r.status_code == 401, (method, url, r.status_code)
        else:
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), (method, url, r.status_code)
        r = operator.request(method, url + query, data={"csrf_token": token} if method == "POST" else None)
        if template.startswith("/api/"):
            expected = {401}  # a session cookie is no bearer token
        elif template.startswith("/communes/"):
            expected = {404}  # another commune's programs do not exist for this operator
        elif template in ("/", "/logout"):
            expected = {303}  # home redirects to the operator's own page; logout is allowed
        elif template == "/account":
            expected = {200}  # everyone may change their own password
        elif template == "/account/password":
            expected = {400}  # ... given the current one (not sent here)
        else:
            expected = {403}
        assert r.status_code in expected, (method, url, r.status_code)
        checked += 1
    assert checked == len(routes) - len(PUBLIC)


def test_an_editor_does_not_see_bulletins_outside_the_group(web: Web) -> None:
    mine = add_bulletin(web.db, web.project.deployment, web.project.settings, targets='["bat-xat"]')
    other = add_bulletin(
        web.db, web.project.deployment, web.project.settings, targets='["02695"]', title="Tin của Bản Lầu"
    )
    client = web.client()
    login(client, "bientap")
    assert client.get(f"/bulletins/{mine}").status_code == 200
    assert client.get(f"/bulletins/{other}").status_code == 404
    listing = client.get("/bulletins").text
    assert "Họp thôn về gia hạn thẻ BHYT" in listing and "Tin của Bản Lầu" not in listing
    assert client.get("/communes/02695").status_code == 404
    assert client.get("/communes/02641").status_code == 200


def test_the_login_limit_lifts_after_its_window() -> None:
    limiter = RateLimiter(limit=5, window_s=0.3)
    for _ in range(5):
        assert limiter.wait_s("duyet|127.0.0.1") == 0
        limiter.failed("duyet|127.0.0.1")
    assert 0 < limiter.wait_s("duyet|127.0.0.1") <= 0.3
    assert limiter.wait_s("duyet|10.0.0.9") == 0  # per address
    time.sleep(0.35)
    assert limiter.wait_s("duyet|127.0.0.1") == 0


def test_templates_are_nfc_vietnamese() -> None:
    from pipeline.web.pages import TEMPLATES_DIR

    for path in TEMPLATES_DIR.glob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert unicodedata.normalize("NFC", text) == text, path.name
    assert 'lang="vi"' in (TEMPLATES_DIR / "base.html").read_text(encoding="utf-8")


# --- guards each held by a test (issue 30) -------------------------------------------


def _set(web: Web, table: str, name: str, **values: object) -> None:
    """Change rows behind the application's back, as time or another process would."""
    import sqlalchemy as sa

    from pipeline.store import users as user_store

    user = user_store.user_by_name(web.db, name)
    t = web.db.table(table)
    key = t.c.id if table == "users" else t.c.user_id
    with web.db.begin() as conn:
        conn.execute(sa.update(t).where(key == user.id).values(**values))


def test_the_session_cookie_lives_no_longer_than_the_session(web: Web) -> None:
    from pipeline.web.auth import SESSION_LIFETIME

    r = login(web.client(), "bientap")
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith(SESSION_COOKIE))
    max_age = re.search(r"max-age=(\d+)", cookie, re.IGNORECASE)
    assert max_age is not None, f"a session cookie without Max-Age outlives the browser's session: {cookie}"
    assert 0 < int(max_age.group(1)) <= SESSION_LIFETIME.total_seconds()


def test_an_expired_session_no_longer_works(web: Web) -> None:
    import datetime as dt

    client = web.client("bientap")
    assert client.get("/bulletins").status_code == 200
    _set(web, "sessions", "bientap", expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    r = client.get("/bulletins")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_disabling_a_user_deletes_their_sessions(web: Web) -> None:
    """Layer one: the rows go. Enabling the user again does not revive an old cookie."""
    import sqlalchemy as sa

    from pipeline.store import users as user_store

    client = web.client("bientap")
    assert client.get("/bulletins").status_code == 200
    user = user_store.user_by_name(web.db, "bientap")
    user_store.set_disabled(web.db, user.id, True)
    s = web.db.table("sessions")
    with web.db.begin() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(s).where(s.c.user_id == user.id)).scalar()
    assert left == 0
    user_store.set_disabled(web.db, user.id, False)
    assert client.get("/bulletins").status_code == 303


def test_a_session_of_a_disabled_user_is_refused_on_read(web: Web) -> None:
    """Layer two: a session row that survived (another path disabled the user) does not open pages."""
    client = web.client("bientap")
    assert client.get("/bulletins").status_code == 200
    _set(web, "users", "bientap", disabled=True)  # the row of the session is still there
    r = client.get("/bulletins")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
