"""Log in, log out, and the home page that sends each role where it works."""

from __future__ import annotations

import secrets
import unicodedata

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from pipeline.store import audit
from pipeline.store import users as user_store
from pipeline.web.auth import (
    CSRF_FIELD,
    PRELOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    LoggedIn,
    check_csrf,
    verify_password,
)
from pipeline.web.pages import render
from pipeline.web.state import web_state

router = APIRouter(include_in_schema=False)
PUBLIC_PATHS = {"/login", "/healthz"}  # /healthz: pipeline/web/routes_ops.py


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_next(value: str | None) -> str:
    """Only a path on this site (never //host or a scheme) may follow a login."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _login_page(
    request: Request, *, next_url: str, error: str | None = None, status: int = 200, name: str = ""
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request, "login.html", status=status, prelogin=token, next_url=next_url, error=error, login_name=name
    )
    response.set_cookie(
        PRELOGIN_COOKIE,
        web_state(request).codec.prelogin_cookie(token),
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=3600,
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, next_url=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    state = web_state(request)
    form = await request.form()
    name = unicodedata.normalize("NFC", str(form.get("name", "")).strip())
    password = str(form.get("password", ""))
    next_url = _safe_next(str(form.get("next", "/")))
    expected = state.codec.prelogin_token(request.cookies.get(PRELOGIN_COOKIE))
    sent = form.get(CSRF_FIELD)
    if expected is None or not isinstance(sent, str) or not secrets.compare_digest(sent, expected):
        return _login_page(
            request, next_url=next_url, status=403, name=name, error="Biểu mẫu đã hết hạn; hãy đăng nhập lại."
        )
    client = request.client.host if request.client else "?"
    locked = user_store.account_locked(state.db, name) if name else None
    if locked is not None:
        audit.record(state.db, name, "login.failed", f"user:{name}", "tài khoản đang khóa", client=client)
        return _login_page(
            request,
            next_url=next_url,
            status=423,
            name=name,
            error="Tài khoản này đã bị khóa vì đăng nhập sai quá nhiều lần. Hãy nhờ quản trị viên mở khóa.",
        )
    wait = state.limiter.wait_s(name, client)
    if wait > 0:
        response = _login_page(
            request,
            next_url=next_url,
            status=429,
            name=name,
            error=f"Đăng nhập sai quá nhiều lần. Hãy chờ {int(wait) + 1} giây rồi thử lại.",
        )
        response.headers["retry-after"] = str(int(wait) + 1)
        return response
    found = user_store.user_with_hash(state.db, name)
    ok = found is not None and not found[0].disabled and verify_password(found[1], password)
    if not ok or found is None:
        lock = state.limiter.failed(name, client)
        audit.record(state.db, name or "?", "login.failed", f"user:{name}", "", client=client)
        if lock and found is not None:
            user_store.lock_account(state.db, name, failures=state.limiter.account.lock_after)
            audit.record(state.db, "system", "login.locked", f"user:{name}", "", client=client)
        return _login_page(request, next_url=next_url, status=401, name=name, error="Sai tên đăng nhập hoặc mật khẩu.")
    state.limiter.succeeded(name, client)
    audit.record(state.db, name, "login.ok", f"user:{name}", "", client=client)
    user = found[0]
    old = state.codec.session_id(request.cookies.get(SESSION_COOKIE))
    if old:
        user_store.delete_session(state.db, old)
    session_id = secrets.token_urlsafe(32)  # a new id at every login: no session fixation
    user_store.create_session(
        state.db, session_id, user_id=user.id, csrf_token=secrets.token_urlsafe(32), lifetime=SESSION_LIFETIME
    )
    if next_url == "/":
        next_url = _home(user.role, user.commune)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        state.codec.session_cookie(session_id),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        max_age=int(SESSION_LIFETIME.total_seconds()),
    )
    response.delete_cookie(PRELOGIN_COOKIE)
    return response


@router.post("/logout", dependencies=[Depends(check_csrf)])
def logout(request: Request, who: LoggedIn) -> Response:
    user_store.delete_session(web_state(request).db, who.session_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _home(role: str, commune: str | None) -> str:
    if role == "operator" and commune:
        return f"/communes/{commune}"
    if role == "approver":
        return "/bulletins?status=draft"
    if role == "reader":
        return "/readings"
    return "/bulletins"


@router.get("/")
def home(who: LoggedIn) -> Response:
    return RedirectResponse(_home(who.user.role, who.user.commune), status_code=303)
