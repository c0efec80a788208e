"""Approve, withdraw and dispatch: a confirmation step, post/redirect/get, one-time tokens.

``GET /bulletins/{id}/{action}`` names what will happen and to how many communes, in a
form carrying a fresh ``action_token``. The POST claims the token (``store.actions``):
only the first request with it does the work; every request, the first included, is
answered with a redirect to ``/actions/{token}``, the result page. Reloading that page
shows the result again; it never approves or dispatches again. A routine or urgent
bulletin may be approved or withdrawn without the confirmation page (its button
carries a token); an emergency always goes through it.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from pipeline import lifecycle
from pipeline.errors import LoaError, UsageError
from pipeline.messages import vietnamese
from pipeline.models import Bulletin
from pipeline.readings import language_needs, missing_languages
from pipeline.store import audit
from pipeline.store.actions import claim_action, finish_action, get_action
from pipeline.web.auth import Approver, Authed, Reader, check_csrf
from pipeline.web.pages import render
from pipeline.web.routes_bulletins import visible_bulletin
from pipeline.web.state import WebState, web_state

router = APIRouter(include_in_schema=False)
ACTIONS = ("approve", "withdraw", "dispatch")
ACTION_FIELD = "action_token"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def new_action_token() -> str:
    return secrets.token_urlsafe(24)


def _check_action(action: str) -> None:
    if action not in ACTIONS:
        raise HTTPException(404, "Không tìm thấy trang này.")


def refusal(action: str, b: Bulletin, role: str) -> str | None:
    """Why ``action`` cannot be done to ``b`` (Vietnamese), or None; the state table decides."""
    if action == "dispatch" and b.priority != "emergency":
        return "Chỉ bản tin hỏa tốc (khẩn cấp) mới được phát khẩn ngay; bản tin này phát theo lịch."
    step = "withdraw" if action == "withdraw" else "approve"  # dispatch approves a draft first
    try:
        lifecycle.move(b.status, step, role, bulletin_id=b.id)
    except UsageError as exc:
        return vietnamese(exc)
    return None


def needs_confirmation(action: str, b: Bulletin) -> bool:
    return action == "dispatch" or b.priority == "emergency"


@router.get("/bulletins/{bulletin_id}/{action}")
def confirm_page(request: Request, bulletin_id: int, action: str, who: Approver) -> Response:
    _check_action(action)
    state = web_state(request)
    b = visible_bulletin(state, who, bulletin_id)
    if (why := refusal(action, b, who.user.role)) is not None:
        raise HTTPException(400, why)
    communes = state.deployment.targeted(b.targets)
    needs = language_needs(state.db, state.deployment, b) if action == "approve" else []
    return render(
        request,
        "confirm.html",
        b=b,
        action=action,
        needs=needs,
        missing=missing_languages(needs),
        communes=communes,
        endpoints=sum(len(c.endpoints) for c in communes),
        action_token=new_action_token(),
    )


@router.post("/bulletins/{bulletin_id}/{action}", dependencies=[Depends(check_csrf)])
async def do_action(request: Request, bulletin_id: int, action: str, who: Approver) -> Response:
    _check_action(action)
    state = web_state(request)
    b = visible_bulletin(state, who, bulletin_id)
    form = await request.form()
    if (why := refusal(action, b, who.user.role)) is not None:
        raise HTTPException(400, why)
    missing: tuple[str, ...] = ()
    if action == "approve" and b.status == "draft":
        missing = missing_languages(language_needs(state.db, state.deployment, b))
        # a language will not air: only a second, explicit confirmation of exactly these approves
        if missing and form.get("confirm_missing") != ",".join(missing):
            return RedirectResponse(f"/bulletins/{bulletin_id}/approve", status_code=303)
    token = form.get(ACTION_FIELD)
    if not isinstance(token, str) or not _TOKEN_RE.match(token):
        if needs_confirmation(action, b):
            return RedirectResponse(f"/bulletins/{bulletin_id}/{action}", status_code=303)
        token = new_action_token()  # a plain form post of a routine approval: no double to guard against
    if claim_action(state.db, token, user_id=who.user.id, action=action, bulletin_id=bulletin_id):
        try:
            result = _perform(state, who, b, action, missing=missing)
        except LoaError as exc:
            finish_action(state.db, token, status="failed", result={"error": vietnamese(exc)})
        else:
            finish_action(state.db, token, status="done", result=result)
    else:
        done = get_action(state.db, token)
        if done is None or done.bulletin_id != bulletin_id or done.action != action:
            raise HTTPException(400, "Biểu mẫu không hợp lệ; hãy tải lại trang và thử lại.")
    if action in ("approve", "withdraw") and not needs_confirmation(action, b):
        done = get_action(state.db, token)
        if done is not None and done.status == "done":
            notice = "approved" if action == "approve" else "withdrawn"
            return RedirectResponse(f"/bulletins/{bulletin_id}?ok={notice}", status_code=303)
    return RedirectResponse(f"/actions/{token}", status_code=303)


def _perform(
    state: WebState, who: Authed, b: Bulletin, action: str, *, missing: tuple[str, ...] = ()
) -> dict[str, Any]:
    assert b.id is not None
    name = who.user.name
    actor = lifecycle.web_user(who.user, state.deployment)
    if action == "approve":
        approved = lifecycle.approve(state.db, actor, b.id, deployment=state.deployment, missing=missing)
        return {"status": approved.bulletin.status}
    if action == "withdraw":
        withdrawn = lifecycle.withdraw(state.db, actor, b.id, deployment=state.deployment)
        return {"status": withdrawn.bulletin.status}
    from pipeline.dispatch import dispatch_bulletin

    if b.status == "draft" and b.priority == "emergency":
        lifecycle.approve(state.db, actor, b.id, deployment=state.deployment, note=" (khẩn)")
    report = dispatch_bulletin(b.id, settings=state.settings, deployment=state.deployment, db=state.db)
    failed: list[dict[str, Any]] = [
        {"what": f.what, "error": f.error, "code": None, "fields": {}} for f in report.failures
    ] + [
        {"what": d.endpoint, "error": d.error or "", "code": d.error_code, "fields": d.error_fields}
        for d in report.deliveries
        if d.status != "delivered"
    ]
    audit.record(
        state.db,
        name,
        "bulletin.dispatched",
        f"bulletin:{b.id}",
        f"{len(report.programs)} xã, {len(report.deliveries)} điểm nhận, {len(failed)} lỗi",
    )
    return {
        "programs": len(report.programs),
        "deliveries": len(report.deliveries),
        "seconds": round(report.seconds, 1),
        "failed": failed,
    }


@router.get("/actions/{token}")
def action_result(request: Request, token: str, who: Reader) -> Response:
    state = web_state(request)
    done = get_action(state.db, token) if _TOKEN_RE.match(token) else None
    if done is None:
        raise HTTPException(404, "Không tìm thấy kết quả này.")
    b = visible_bulletin(state, who, done.bulletin_id)
    return render(request, "action_result.html", b=b, done=done)
