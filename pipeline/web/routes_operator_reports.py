"""The operators' reports ("Đã phát", "Báo sự cố") for the staff, per commune and date; open problems."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pipeline.store import users as user_store
from pipeline.store.users import PlayReport
from pipeline.web.auth import Reader, scope_communes
from pipeline.web.pages import render
from pipeline.web.params import QueryDate
from pipeline.web.state import web_state

router = APIRouter(include_in_schema=False)


def open_problems(reports: list[PlayReport]) -> set[int]:
    """Indexes of problem reports with no later "played" report for the same program."""
    out = set()
    for i, r in enumerate(reports):
        if r.kind != "problem":
            continue
        if not any(o.kind == "played" and o.program == r.program and o.at > r.at for o in reports):
            out.add(i)
    return out


@router.get("/operator-reports")
def reports_page(request: Request, who: Reader, date: QueryDate, commune: str = "", open: str = "") -> Response:
    state = web_state(request)
    mine = scope_communes(who.user, state.deployment)
    chosen = {commune} & mine if commune else mine
    reports = user_store.all_play_reports(state.db, chosen)
    still_open = open_problems(reports)
    tz = state.settings.tz
    day = date
    rows = [
        (r, i in still_open)
        for i, r in enumerate(reports)
        if (day is None or r.at.astimezone(tz).date() == day) and (not open or i in still_open)
    ]
    names = {c.code: c.name for c in state.deployment.communes}
    return render(
        request,
        "operator_reports.html",
        rows=rows,
        names=names,
        communes=[c for c in state.deployment.communes if c.code in mine],
        commune=commune,
        date=day.isoformat() if day else "",
        only_open=bool(open),
        open_count=len(still_open),
    )
