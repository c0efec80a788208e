"""Operator decisions on normal bulletins: the commune's page and the pull API.

``GET/POST /communes/{code}/decisions``: a commune operator (or an admin) accepts, defers to a
date, or declines with a reason each approved normal bulletin (thông thường) for the commune.
``GET /api/v1/endpoints/{name}/bulletins`` lists the same bulletins for a device with its token;
``POST /api/v1/endpoints/{name}/decisions`` records a decision for the endpoint's commune.
Both go through ``pipeline.broadcast.decisions.check_decision``; staff see the decisions on the bulletin page.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from pipeline import lifecycle
from pipeline.broadcast.decisions import awaiting, targets
from pipeline.errors import BulletinError, LoaError, UsageError
from pipeline.lifecycle import reads as bulletin_store
from pipeline.messages import vietnamese
from pipeline.models import Bulletin, Commune, Decision
from pipeline.web.api import EndpointDep
from pipeline.web.auth import CommuneUser, check_csrf
from pipeline.web.pages import render
from pipeline.web.state import WebState, web_state

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1", tags=["pull"])


def _today(state: WebState) -> dt.date:
    return dt.datetime.now(state.settings.tz).date()


def _commune(state: WebState, code: str) -> Commune:
    commune = state.deployment.commune(code)
    if commune is None:
        raise HTTPException(404, "Không tìm thấy xã này.")
    return commune


def _bulletin(state: WebState, bulletin_id: int, commune: Commune) -> Bulletin:
    """The bulletin if it is sent to ``commune``; else 404, as if it did not exist."""
    try:
        b = bulletin_store.get_bulletin(state.db, bulletin_id)
    except LoaError as exc:
        raise HTTPException(404, "Không tìm thấy bản tin này.") from exc
    if not targets(b, commune):
        raise HTTPException(404, "Không tìm thấy bản tin này.")
    return b


def _page(request: Request, state: WebState, commune: Commune, *, status: int = 200, **extra: Any) -> Response:
    today = _today(state)
    items = awaiting(bulletin_store.list_bulletins(state.db, status="approved"), commune, today)
    decided = bulletin_store.decisions(state.db, [b.id for b in items if b.id is not None])
    rows = [(b, decided.get((b.id, commune.code))) for b in items if b.id is not None]
    extra.setdefault("failed_bulletin", None)
    return render(
        request,
        "decisions.html",
        status=status,
        commune=commune,
        rows=rows,
        today=today,
        tomorrow=today + dt.timedelta(days=1),
        **extra,
    )


@router.get("/communes/{code}/decisions")
def decisions_page(request: Request, code: str, who: CommuneUser) -> Response:
    state = web_state(request)
    return _page(request, state, _commune(state, code), notice=request.query_params.get("ok"))


@router.post("/communes/{code}/decisions", dependencies=[Depends(check_csrf)])
async def decide(request: Request, code: str, who: CommuneUser) -> Response:
    state = web_state(request)
    if who.user.role not in lifecycle.WHO["decide"]:
        raise HTTPException(403, "Chỉ đài truyền thanh xã mới quyết định phát bản tin thông thường.")
    commune = _commune(state, code)
    form = await request.form()
    raw_id = str(form.get("bulletin", ""))
    if not raw_id.isdigit():
        raise HTTPException(400, "Yêu cầu không hợp lệ; hãy bấm nút trên trang.")
    b = _bulletin(state, int(raw_id), commune)
    decision = str(form.get("decision", ""))
    until: dt.date | None = None
    raw_until = str(form.get("until", "")).strip()
    try:
        if raw_until:
            try:
                until = dt.date.fromisoformat(raw_until)
            except ValueError as exc:
                raise BulletinError(f"bản tin #{b.id}: {raw_until!r} không phải là ngày; chọn ngày trên lịch") from exc
        assert b.id is not None
        d = lifecycle.decide(
            state.db,
            lifecycle.web_user(who.user, state.deployment),
            b.id,
            commune.code,
            decision,
            until=until,
            reason=str(form.get("reason", ""))[:2000],
            today=_today(state),
            deployment=state.deployment,
        )
    except BulletinError as exc:
        return _page(request, state, commune, status=400, error=vietnamese(exc), failed_bulletin=b.id)
    except UsageError as exc:
        return _page(request, state, commune, status=400, error=vietnamese(exc), failed_bulletin=b.id)
    return RedirectResponse(f"/communes/{code}/decisions?ok={d.decision}", status_code=303)


# --- the pull API -------------------------------------------------------------------


class DecisionIn(BaseModel):
    bulletin: int
    decision: str
    until: dt.date | None = None
    reason: str = ""


def _decision_json(d: Decision | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        "decision": d.decision,
        "until": d.until.isoformat() if d.until else None,
        "reason": d.reason,
        "by": d.by,
        "decided_at": d.decided_at.isoformat() if d.decided_at else None,
    }


def _bulletin_json(b: Bulletin, d: Decision | None) -> dict[str, Any]:
    return {
        "id": b.id,
        "title": b.title,
        "source": b.source,
        "reference": b.reference,
        "tier": b.priority,
        "valid_from": b.valid_from.isoformat(),
        "valid_until": b.valid_until.isoformat(),
        "body": b.body,
        "decision": _decision_json(d),
    }


@api_router.get(
    "/endpoints/{name}/bulletins",
    summary="Normal bulletins (thông thường) the endpoint's commune decides on, with its decisions",
)
def api_bulletins(request: Request, endpoint: EndpointDep) -> Response:
    state = web_state(request)
    commune = _commune(state, endpoint.commune)
    items = awaiting(bulletin_store.list_bulletins(state.db, status="approved"), commune, _today(state))
    decided = bulletin_store.decisions(state.db, [b.id for b in items if b.id is not None])
    return JSONResponse([_bulletin_json(b, decided.get((b.id, commune.code))) for b in items if b.id is not None])


@api_router.post(
    "/endpoints/{name}/decisions",
    summary="Accept, defer (until) or decline (reason) a normal bulletin for the endpoint's commune",
    responses={400: {"description": "the decision is not allowed (message in Vietnamese)"}},
)
async def api_decide(request: Request, endpoint: EndpointDep) -> Response:
    state = web_state(request)
    try:
        data = DecisionIn.model_validate(json.loads(await request.body()))
    except (ValueError, ValidationError) as exc:
        raise HTTPException(
            400,
            'Yêu cầu phải là JSON: {"bulletin": số, "decision": "accepted" | "deferred" | "declined", '
            '"until": "YYYY-MM-DD", "reason": "…"}',
        ) from exc
    commune = _commune(state, endpoint.commune)
    b = _bulletin(state, data.bulletin, commune)
    try:
        assert b.id is not None
        stored = lifecycle.decide(
            state.db,
            lifecycle.device(endpoint.name, commune.code),
            b.id,
            commune.code,
            data.decision,
            until=data.until,
            reason=data.reason,
            today=_today(state),
            deployment=state.deployment,
        )
    except BulletinError as exc:
        raise HTTPException(400, vietnamese(exc)) from exc
    except UsageError as exc:
        raise HTTPException(400, vietnamese(exc)) from exc
    return JSONResponse(_bulletin_json(b, stored))
