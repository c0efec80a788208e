"""Management in the UI: users, endpoint tokens, the audit log (admins); one's own password (everyone)."""

from __future__ import annotations

import csv
import io
import unicodedata
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from pipeline.errors import UsageError
from pipeline.store import audit
from pipeline.store import tokens as token_store
from pipeline.store import users as user_store
from pipeline.store.users import ROLES, User
from pipeline.web.auth import Authed, LoggedIn, check_csrf, hash_password, require_role, verify_password
from pipeline.web.pages import render
from pipeline.web.routes_bulletins import MAX_ID
from pipeline.web.state import WebState, web_state

router = APIRouter(include_in_schema=False)
Admin = Annotated[Authed, Depends(require_role())]  # no role listed: admins only
MIN_PASSWORD = 10
USER_NOTICES = {
    "created": "Đã tạo người dùng.",
    "saved": "Đã lưu vai trò và phạm vi.",
    "disabled": "Đã khóa người dùng; các phiên đăng nhập của họ đã kết thúc.",
    "enabled": "Đã mở lại người dùng.",
    "password": "Đã đặt mật khẩu mới; các phiên đăng nhập cũ đã kết thúc.",
    "unlocked": "Đã mở khóa đăng nhập.",
    "revoked": "Đã thu hồi mã truy cập.",
}


async def _languages(request: Request, state: WebState, role: str) -> tuple[tuple[str, ...], str | None]:
    """A reader's languages (the checkboxes ``languages``), and an error if there are none or unknown ones."""
    if role != "reader":
        return (), None
    chosen = tuple(v for v in (await request.form()).getlist("languages") if isinstance(v, str))
    known = deployment_languages(state)
    if not chosen:
        return (), "Người đọc phải đọc ít nhất một thứ tiếng."
    if any(lang not in known for lang in chosen):
        return (), "Thứ tiếng này không có trong danh sách."
    return tuple(sorted(set(chosen), key=known.index)), None


def deployment_languages(state: WebState) -> list[str]:
    """Every language of the deployment's communes, in first-seen order."""
    return list(dict.fromkeys(lang for c in state.deployment.communes for lang in c.languages))


def _reader_scope(role: str, group: str | None, commune: str | None) -> tuple[str, ...]:
    return tuple(x for x in (group, commune) if x) if role == "reader" else ()


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: unicodedata.normalize("NFC", v.strip()) for k, v in form.items() if isinstance(v, str)}


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _scope(state: WebState, role: str, scope: str) -> tuple[str | None, str | None, str | None]:
    """(group, commune, error) from a scope field ``""``, ``group:ID`` or ``commune:CODE``."""
    if role not in ROLES:
        return None, None, "Vai trò không hợp lệ."
    kind, _, value = scope.partition(":")
    group = value if kind == "group" else None
    commune = value if kind == "commune" else None
    if group and state.deployment.group(group) is None:
        return None, None, "Trung tâm này không có trong danh sách."
    if commune and state.deployment.commune(commune) is None:
        return None, None, "Xã này không có trong danh sách."
    if role == "operator" and not commune:
        return None, None, "Người của đài xã phải gắn với một xã."
    return group, commune, None


def _users_page(request: Request, state: WebState, *, error: str | None = None, status: int = 200) -> Response:
    return render(
        request,
        "admin_users.html",
        status=status,
        users=user_store.list_users(state.db),
        locked=user_store.locked_accounts(state.db),
        deployment=state.deployment,
        roles=ROLES,
        languages=deployment_languages(state),
        error=error,
        notice_text=USER_NOTICES.get(request.query_params.get("ok", "")),
    )


@router.get("/admin/users")
def users_page(request: Request, who: Admin) -> Response:
    return _users_page(request, web_state(request))


@router.post("/admin/users", dependencies=[Depends(check_csrf)])
async def create_user(request: Request, who: Admin) -> Response:
    state = web_state(request)
    f = await _form(request)
    name, role, password = f.get("name", ""), f.get("role", ""), f.get("password", "")
    group, commune, error = _scope(state, role, f.get("scope", ""))
    langs, lang_error = await _languages(request, state, role)
    error = error or lang_error
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        error = "Tên đăng nhập phải có từ 1 đến 64 ký tự, không có dấu cách."
    elif len(password) < MIN_PASSWORD:
        error = f"Mật khẩu cần ít nhất {MIN_PASSWORD} ký tự."
    if error is None:
        try:
            user = user_store.add_user(
                state.db,
                name,
                password_hash=hash_password(password),
                role=role,
                group=None if role == "reader" else group,
                commune=None if role == "reader" else commune,
                languages=langs,
                scope=_reader_scope(role, group, commune),
            )
        except UsageError:
            error = f"Đã có người dùng tên {name}; hãy chọn tên khác."
        else:
            detail = role + (f", tiếng {','.join(langs)}" if langs else "")
            audit.record(state.db, who.user.name, "user.added", f"user:{user.name}", detail, client=_client(request))
            return RedirectResponse("/admin/users?ok=created", status_code=303)
    return _users_page(request, state, error=error, status=400)


def _target(state: WebState, user_id: int) -> User:
    if not 0 < user_id <= MAX_ID:
        raise HTTPException(404, "Không tìm thấy người dùng này.")
    for u in user_store.list_users(state.db):
        if u.id == user_id:
            return u
    raise HTTPException(404, "Không tìm thấy người dùng này.")


@router.post("/admin/users/{user_id}", dependencies=[Depends(check_csrf)])
async def update_user(request: Request, user_id: int, who: Admin) -> Response:
    state = web_state(request)
    target = _target(state, user_id)
    f = await _form(request)
    role = f.get("role", "")
    group, commune, error = _scope(state, role, f.get("scope", ""))
    langs, lang_error = await _languages(request, state, role)
    error = error or lang_error
    if target.id == who.user.id and role != "admin":
        error = "Bạn không thể tự bỏ quyền quản trị của mình."
    if error is not None:
        return _users_page(request, state, error=f"{target.name}: {error}", status=400)
    reader = role == "reader"
    user_store.set_role_scope(
        state.db,
        target.id,
        role=role,
        group=None if reader else group,
        commune=None if reader else commune,
        languages=langs,
        scope=_reader_scope(role, group, commune),
    )
    scope = f"nhóm {group}" if group else f"xã {commune}" if commune else "tất cả"
    spoken = f", tiếng {','.join(langs)}" if reader else ""
    audit.record(state.db, who.user.name, "user.changed", f"user:{target.name}", f"{role}, {scope}{spoken}")
    return RedirectResponse("/admin/users?ok=saved", status_code=303)


@router.post("/admin/users/{user_id}/disable", dependencies=[Depends(check_csrf)])
def disable_user(request: Request, user_id: int, who: Admin) -> Response:
    state = web_state(request)
    target = _target(state, user_id)
    if target.id == who.user.id:
        return _users_page(request, state, error="Bạn không thể tự khóa tài khoản của mình.", status=400)
    user_store.set_disabled(state.db, target.id, True)
    audit.record(state.db, who.user.name, "user.disabled", f"user:{target.name}")
    return RedirectResponse("/admin/users?ok=disabled", status_code=303)


@router.post("/admin/users/{user_id}/enable", dependencies=[Depends(check_csrf)])
def enable_user(request: Request, user_id: int, who: Admin) -> Response:
    state = web_state(request)
    target = _target(state, user_id)
    user_store.set_disabled(state.db, target.id, False)
    audit.record(state.db, who.user.name, "user.enabled", f"user:{target.name}")
    return RedirectResponse("/admin/users?ok=enabled", status_code=303)


@router.post("/admin/users/{user_id}/password", dependencies=[Depends(check_csrf)])
async def reset_password(request: Request, user_id: int, who: Admin) -> Response:
    state = web_state(request)
    target = _target(state, user_id)
    password = (await _form(request)).get("password", "")
    if len(password) < MIN_PASSWORD:
        return _users_page(request, state, error=f"Mật khẩu cần ít nhất {MIN_PASSWORD} ký tự.", status=400)
    user_store.set_password_hash(state.db, target.id, hash_password(password))
    user_store.end_sessions(state.db, target.id)
    audit.record(state.db, who.user.name, "user.password", f"user:{target.name}", "đặt lại")
    return RedirectResponse("/admin/users?ok=password", status_code=303)


@router.post("/admin/users/{user_id}/unlock", dependencies=[Depends(check_csrf)])
def unlock_user(request: Request, user_id: int, who: Admin) -> Response:
    state = web_state(request)
    target = _target(state, user_id)
    user_store.unlock_account(state.db, target.name)
    state.limiter.account.succeeded(target.name)
    audit.record(state.db, who.user.name, "user.unlocked", f"user:{target.name}")
    return RedirectResponse("/admin/users?ok=unlocked", status_code=303)


# --- endpoint tokens -----------------------------------------------------------------


def _tokens_page(request: Request, state: WebState, **extra: Any) -> Response:
    return render(
        request,
        "admin_tokens.html",
        tokens=token_store.list_tokens(state.db, "endpoint"),
        endpoints=state.deployment.endpoints(),
        communes={e.name: c.name for c in state.deployment.communes for e in c.endpoints},
        notice_text=USER_NOTICES.get(request.query_params.get("ok", "")),
        **extra,
    )


@router.get("/admin/tokens")
def tokens_page(request: Request, who: Admin) -> Response:
    return _tokens_page(request, web_state(request), issued=None)


@router.post("/admin/tokens", dependencies=[Depends(check_csrf)])
async def issue_token(request: Request, who: Admin) -> Response:
    state = web_state(request)
    endpoint = (await _form(request)).get("endpoint", "")
    if state.deployment.endpoint(endpoint) is None:
        return _tokens_page(request, state, issued=None, error="Điểm nhận này không có trong danh sách.")
    token = token_store.create_endpoint_token(state.db, endpoint)
    audit.record(state.db, who.user.name, "token.issued", f"endpoint:{endpoint}")
    # shown once, on this response only (no-store); never logged, stored hashed
    return _tokens_page(request, state, issued={"endpoint": endpoint, "token": token})


@router.post("/admin/tokens/{token_id}/revoke", dependencies=[Depends(check_csrf)])
def revoke_token(request: Request, token_id: int, who: Admin) -> Response:
    state = web_state(request)
    if not 0 < token_id <= MAX_ID:
        raise HTTPException(404, "Không tìm thấy mã truy cập này.")
    try:
        tok = token_store.revoke_token(state.db, "endpoint", token_id)
    except UsageError as exc:
        raise HTTPException(404, "Không tìm thấy mã truy cập này.") from exc
    audit.record(state.db, who.user.name, "token.revoked", f"endpoint:{tok.owner}", f"#{tok.id}")
    return RedirectResponse("/admin/tokens?ok=revoked", status_code=303)


# --- one's own password --------------------------------------------------------------


@router.get("/account")
def account_page(request: Request, who: LoggedIn) -> Response:
    return render(request, "account.html", notice_text=None)


@router.post("/account/password", dependencies=[Depends(check_csrf)])
async def change_password(request: Request, who: LoggedIn) -> Response:
    state = web_state(request)
    f = await _form(request)
    found = user_store.user_with_hash(state.db, who.user.name)
    error = None
    if found is None or not verify_password(found[1], f.get("current", "")):
        error = "Mật khẩu hiện tại không đúng."
    elif len(f.get("new", "")) < MIN_PASSWORD:
        error = f"Mật khẩu mới cần ít nhất {MIN_PASSWORD} ký tự."
    elif f.get("new") != f.get("confirm"):
        error = "Hai lần nhập mật khẩu mới không giống nhau."
    if error is not None:
        return render(request, "account.html", status=400, error=error, notice_text=None)
    user_store.set_password_hash(state.db, who.user.id, hash_password(f["new"]))
    user_store.end_sessions(state.db, who.user.id, keep=who.session_id)
    audit.record(state.db, who.user.name, "user.password", f"user:{who.user.name}", "tự đổi")
    return render(request, "account.html", notice_text="Đã đổi mật khẩu; các phiên đăng nhập khác đã kết thúc.")


# --- the audit log -------------------------------------------------------------------

ACTION_VI = {
    "bulletin.added": "Thêm bản tin",
    "bulletin.revised": "Sửa bản tin",
    "bulletin.approved": "Duyệt bản tin",
    "bulletin.approved_missing": "Duyệt khi còn thiếu bản đọc",
    "bulletin.withdrawn": "Thu hồi bản tin",
    "bulletin.dispatched": "Phát khẩn",
    "bulletin.back_to_draft": "Bản tin trở về nháp",
    "recording.added": "Thêm bản ghi",
    "recording.replaced": "Thay bản ghi",
    "recording.refused": "Từ chối bản ghi",
    "recording.removed": "Gỡ bản ghi",
    "bulletin.cancelled": "Hủy bản tin (CAP)",
    "bulletin.superseded": "Bản tin được thay thế",
    "bulletin.expired": "Bản tin hết hạn",
    "bulletin.decided": "Xã quyết định phát",
    "agency.token.issued": "Cấp mã cho cơ quan",
    "agency.token.revoked": "Thu hồi mã của cơ quan",
    "agency.disabled": "Tạm dừng cơ quan gửi tin",
    "agency.enabled": "Cho phép cơ quan gửi tin lại",
    "report.played": "Báo đã phát",
    "report.problem": "Báo sự cố",
    "consultation.moderated": "Kiểm duyệt ý kiến",
    "user.added": "Tạo người dùng",
    "user.changed": "Đổi vai trò, phạm vi",
    "user.disabled": "Khóa người dùng",
    "user.enabled": "Mở lại người dùng",
    "user.password": "Đặt mật khẩu",
    "user.unlocked": "Mở khóa đăng nhập",
    "token.issued": "Cấp mã truy cập",
    "token.revoked": "Thu hồi mã truy cập",
    "device.code_issued": "Cấp mã đăng ký thiết bị",
    "device.enrolled": "Thiết bị đăng ký",
    "device.rotation_requested": "Yêu cầu đổi mã truy cập thiết bị",
    "device.token_rotated": "Thiết bị đổi mã truy cập",
    "login.ok": "Đăng nhập",
    "login.failed": "Đăng nhập sai",
    "login.locked": "Khóa đăng nhập",
}


@router.get("/admin/audit")
def audit_page(request: Request, who: Admin, action: str = "", actor: str = "") -> Response:
    state = web_state(request)
    items = audit.entries(state.db, action=action[:48] or None, actor=actor[:64] or None, limit=500)
    return render(request, "audit.html", items=items, ACTION_VI=ACTION_VI, action=action, actor=actor)


@router.get("/admin/audit.csv")
def audit_csv(request: Request, who: Admin) -> Response:
    state = web_state(request)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["id", "at_utc", "actor", "action", "target", "detail", "client"])
    for e in reversed(audit.entries(state.db, limit=None)):
        w.writerow([e.id, e.at.isoformat(), e.actor, e.action, e.target, e.detail, e.client or ""])
    return Response(
        out.getvalue().encode("utf-8-sig"),  # with a BOM: spreadsheets then read the Vietnamese right
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="nhat-ky-loa.csv"'},
    )
