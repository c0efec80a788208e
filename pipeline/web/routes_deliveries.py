"""The delivery dashboard of a date: communes × slots, what reached each endpoint, retry."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from pipeline.models import Delivery, ProgramRecord
from pipeline.store import runs as run_store
from pipeline.web.auth import Approver, Reader, check_csrf, scope_communes
from pipeline.web.outbox import endpoint_manifest
from pipeline.web.pages import render
from pipeline.web.params import QueryDate, parse_day
from pipeline.web.state import web_state

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Row:
    code: str
    name: str
    cells: dict[str, ProgramRecord | None]  # slot → program (None: no program built)
    endpoints: list[tuple[str, Delivery | None]]  # endpoint name → last attempt

    @property
    def status(self) -> str:
        found = [d for _, d in self.endpoints]
        if any(d is not None and d.status == "failed" for d in found):
            return "failed"
        if found and all(d is not None and d.status == "delivered" for d in found):
            return "delivered"
        return "pending"


@router.get("/deliveries")
def dashboard(request: Request, who: Reader, date: QueryDate) -> Response:
    state = web_state(request)
    today = dt.datetime.now(state.settings.tz).date()
    day = date or today + dt.timedelta(days=1)
    mine = scope_communes(who.user, state.deployment)
    programs = {(p.commune, p.slot): p for p in run_store.programs_on(state.db, day)}
    last = {d.endpoint: d for d in run_store.latest_deliveries(state.db, day.isoformat())}
    slots: list[str] = []
    rows: list[Row] = []
    for c in state.deployment.communes:
        if c.code not in mine:
            continue
        running = [s.name for s in c.slots if s.runs_on(day)]
        slots.extend(s for s in running if s not in slots)
        rows.append(
            Row(
                code=c.code,
                name=c.name,
                cells={s: programs.get((c.code, s)) for s in running},
                endpoints=[(e.name, last.get(e.name)) for e in c.endpoints],
            )
        )
    counts = {k: sum(r.status == k for r in rows) for k in ("delivered", "failed", "pending")}
    return render(
        request,
        "deliveries.html",
        day=day,
        prev_day=day - dt.timedelta(days=1),
        next_day=day + dt.timedelta(days=1),
        slots=slots,
        rows=rows,
        counts=counts,
        notice=request.query_params.get("ok"),
    )


@router.post("/deliveries/retry", dependencies=[Depends(check_csrf)])
async def retry(request: Request, who: Approver) -> Response:
    from starlette.concurrency import run_in_threadpool

    from pipeline.nightly import push_day

    state = web_state(request)
    form = await request.form()
    day = parse_day(str(form.get("date", "")), "date", "body") or dt.datetime.now(state.settings.tz).date()
    name = str(form.get("endpoint", ""))
    endpoint = state.deployment.endpoint(name)
    if endpoint is None or endpoint.commune not in scope_communes(who.user, state.deployment):
        raise HTTPException(404, "Không tìm thấy điểm nhận này.")
    if endpoint_manifest(state.settings, endpoint, f"programs/{day.isoformat()}") is None:
        raise HTTPException(
            409, f"Chưa dựng chương trình ngày {day:%d/%m/%Y} cho xã này; hãy chạy dựng chương trình trước."
        )
    await run_in_threadpool(
        push_day, day, settings=state.settings, deployment=state.deployment, db=state.db, endpoint=name
    )
    return RedirectResponse(f"/deliveries?date={day.isoformat()}&ok={name}", status_code=303)
