"""Device health (the province's and the district's view) and, for admins and approvers,
one-time enrollment codes and token rotation for the commune players (``loa-device``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from pipeline import devices
from pipeline.store import devices as device_store
from pipeline.store.devices import Device
from pipeline.web.auth import Approver, Reader, check_csrf, scope_communes
from pipeline.web.pages import render
from pipeline.web.state import WebState, web_state

router = APIRouter(include_in_schema=False)
STALE = dt.timedelta(minutes=15)  # no heartbeat for this long: the device is shown as silent


def health(device: Device | None, now: dt.datetime) -> str:
    """ok | silent | clock | never — what the page colours a device by."""
    if device is None or device.heartbeat_at is None:
        return "never"
    if now - device.heartbeat_at > STALE:
        return "silent"
    if device.clock_offset_s is not None and abs(device.clock_offset_s) > devices.CLOCK_WARN_S:
        return "clock"
    return "ok"


def device_rows(state: WebState, communes: set[str]) -> list[dict[str, Any]]:
    """One row per endpoint of ``communes``: its commune, its device's last heartbeat and health."""
    now = dt.datetime.now(dt.UTC)
    endpoints = [(c, e) for c in state.deployment.communes if c.code in communes for e in c.endpoints]
    known = device_store.devices(state.db, {e.name for _, e in endpoints})
    return [
        {"commune": c, "endpoint": e, "device": known.get(e.name), "health": health(known.get(e.name), now)}
        for c, e in endpoints
    ]


def _page(request: Request, who: Any, **extra: Any) -> Response:
    state = web_state(request)
    rows = device_rows(state, scope_communes(who.user, state.deployment))
    return render(
        request,
        "devices.html",
        rows=rows,
        may_manage=who.user.role in ("admin", "approver"),
        counts={h: sum(r["health"] == h for r in rows) for h in ("ok", "clock", "silent", "never")},
        server_url=str(request.base_url).rstrip("/"),
        **extra,
    )


@router.get("/devices")
def devices_page(request: Request, who: Reader) -> Response:
    return _page(request, who, issued=None, notice=request.query_params.get("ok"))


def _endpoint_in_scope(state: WebState, who: Any, name: str) -> str:
    endpoint = state.deployment.endpoint(name)
    if endpoint is None or endpoint.commune not in scope_communes(who.user, state.deployment):
        raise HTTPException(404, "Không tìm thấy điểm nhận này.")
    return endpoint.name


@router.post("/devices/{name}/code", dependencies=[Depends(check_csrf)])
def issue_code(request: Request, name: str, who: Approver) -> Response:
    state = web_state(request)
    endpoint = _endpoint_in_scope(state, who, name)
    code = devices.issue_enrollment_code(state.db, state.deployment, endpoint, by=who.user.name)
    # shown once, on this response only; stored hashed
    response = _page(request, who, issued={"endpoint": endpoint, "code": code}, notice=None)
    response.headers["cache-control"] = "no-store"
    return response


@router.post("/devices/{name}/rotate", dependencies=[Depends(check_csrf)])
def rotate_token(request: Request, name: str, who: Approver) -> Response:
    state = web_state(request)
    endpoint = _endpoint_in_scope(state, who, name)
    devices.request_rotation(state.db, endpoint, by=who.user.name)
    return RedirectResponse("/devices?ok=rotate", status_code=303)
