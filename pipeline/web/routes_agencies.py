"""Admins manage agencies and their API tokens: list, create (shown once), revoke; disable, enable."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from pipeline.errors import NotFoundError
from pipeline.store import agencies as agency_store
from pipeline.store import tokens as token_store
from pipeline.web.auth import Authed, check_csrf, require_role
from pipeline.web.pages import render
from pipeline.web.state import web_state

router = APIRouter(include_in_schema=False)
#: admins pass every role check; nobody else has the role "admin-only"
Admin = Annotated[Authed, Depends(require_role("admin-only"))]


def _page(request: Request, *, new_token_for: str | None = None, token: str | None = None) -> Response:
    state = web_state(request)
    agencies = agency_store.list_agencies(state.db)
    tokens = token_store.list_tokens(state.db, "agency")
    return render(
        request,
        "agencies.html",
        agencies=agencies,
        tokens={a.name: [t for t in tokens if t.owner == a.name] for a in agencies},
        new_token_for=new_token_for,
        token=token,
        tz=state.settings.tz,
        notice=request.query_params.get("ok"),
    )


@router.get("/admin/agencies")
def agencies_page(request: Request, who: Admin) -> Response:
    return _page(request)


@router.post("/admin/agencies/{name}/tokens", dependencies=[Depends(check_csrf)])
def create_token(request: Request, name: str, who: Admin) -> Response:
    state = web_state(request)
    try:
        agency_store.get_agency(state.db, name)
    except NotFoundError as exc:
        raise HTTPException(404, "Không có cơ quan này.") from exc
    _, token = token_store.create_agency_token(state.db, name, by=who.user.name)
    response = _page(request, new_token_for=name, token=token)
    response.headers["cache-control"] = "no-store"
    return response


@router.post("/admin/agencies/{name}/tokens/{token_id}/revoke", dependencies=[Depends(check_csrf)])
def revoke_token(request: Request, name: str, token_id: int, who: Admin) -> Response:
    if token_store.revoke_tokens(web_state(request).db, "agency", name, token_id=token_id, by=who.user.name) == 0:
        raise HTTPException(404, "Không có mã truy cập này, hoặc mã đã bị thu hồi.")
    return RedirectResponse("/admin/agencies?ok=revoked", status_code=303)


@router.post("/admin/agencies/{name}/disable", dependencies=[Depends(check_csrf)])
def disable_agency(request: Request, name: str, who: Admin) -> Response:
    return _set_disabled(request, name, True, who)


@router.post("/admin/agencies/{name}/enable", dependencies=[Depends(check_csrf)])
def enable_agency(request: Request, name: str, who: Admin) -> Response:
    return _set_disabled(request, name, False, who)


def _set_disabled(request: Request, name: str, disabled: bool, who: Authed) -> Response:
    try:
        agency_store.set_disabled(web_state(request).db, name, disabled, by=who.user.name)
    except NotFoundError as exc:
        raise HTTPException(404, "Không có cơ quan này.") from exc
    return RedirectResponse(f"/admin/agencies?ok={'disabled' if disabled else 'enabled'}", status_code=303)
