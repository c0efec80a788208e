"""A week per commune: what airs in which slot, what is left out and why, what lacks a recording.

Read-only, and planned by the orchestrator (``Producer.plan_day``), the same planning the
nightly build uses: operators' decisions and the broadcast policy included. Nothing is built
or stored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from pipeline.models import LANGUAGES, TTS_LANGUAGES, Commune, Deferral, ProgramPlan
from pipeline.produce import Producer, program_id
from pipeline.web.auth import Reader, scope_communes
from pipeline.web.pages import SLOT_VI, render
from pipeline.web.params import query_day
from pipeline.web.state import WebState, web_state

router = APIRouter(include_in_schema=False)
MIN_DAY, MAX_DAY = dt.date(2000, 1, 3), dt.date(2199, 12, 28)
WeekDay = Annotated[dt.date | None, Depends(query_day("week"))]


@dataclass(frozen=True, slots=True)
class Cell:
    plan: ProgramPlan
    missing: tuple[str, ...]  # "#3 Tiếng Mông"
    deferred: tuple[str, ...]  # Vietnamese: "Hoãn: …", "Không phát: …"
    refused: str | None = None  # the broadcast policy refuses the whole program (Vietnamese)


def _when(until_slot: str) -> str:
    day, _, slot = until_slot.rpartition(" ")
    when = SLOT_VI.get(slot, slot)
    if day:
        with contextlib.suppress(ValueError):
            when += f" ngày {dt.date.fromisoformat(day):%d/%m/%Y}"
    return when.lower()


def deferral_vi(d: Deferral) -> str:
    """One line of the calendar for a bulletin left out of a program, by the deferral's kind."""
    title = f"#{d.bulletin.id} {d.bulletin.title}"
    if d.kind == "language":
        return f"Không phát: {title}: không có ngôn ngữ nào của xã"
    if d.kind == "declined":
        return f"Không phát: {title}: xã đã quyết định không phát"
    if d.kind == "deferred":
        if d.until_slot is None:
            return f"Không phát: {title}: xã hoãn đến sau khi bản tin hết hiệu lực"
        return f"Hoãn: {title}: xã hoãn sang {_when(d.until_slot)}"
    if d.until_slot is None:
        return f"Hoãn: {title}: không đủ thời lượng, hết hiệu lực nên không phát nữa"
    return f"Hoãn: {title}: không đủ thời lượng, hoãn sang {_when(d.until_slot)}"


def week_of(state: WebState, commune: Commune, monday: dt.date) -> list[tuple[dt.date, dict[str, Cell]]]:
    producer = Producer(settings=state.settings, deployment=state.deployment, db=state.db)
    out = []
    for i in range(7):
        planned = producer.plan_day(monday + dt.timedelta(days=i), commune=commune.code)
        refused = planned.refused()
        cells = {}
        for p in planned.plans:
            missing = tuple(
                f"#{item.bulletin.id} {LANGUAGES.get(lang, lang)}"
                for item in p.items
                for lang in item.languages
                if lang not in TTS_LANGUAGES and (item.bulletin.id, lang) not in planned.recordings
            )
            why = refused.get(program_id(p))
            cells[p.slot.name] = Cell(
                p, missing, tuple(deferral_vi(d) for d in p.deferred), why.message_vi if why else None
            )
        out.append((planned.date, cells))
    return out


@router.get("/calendar")
def calendar_home(request: Request, who: Reader) -> Response:
    state = web_state(request)
    mine = sorted(scope_communes(who.user, state.deployment))
    if not mine:
        raise HTTPException(404, "Không có xã nào trong phạm vi của bạn.")
    return RedirectResponse(f"/calendar/{mine[0]}", status_code=303)


@router.get("/calendar/{code}")
def calendar(request: Request, code: str, who: Reader, week: WeekDay) -> Response:
    state = web_state(request)
    commune = state.deployment.commune(code)
    mine = scope_communes(who.user, state.deployment)
    if commune is None or code not in mine:
        raise HTTPException(404, "Không tìm thấy xã này.")
    today = dt.datetime.now(state.settings.tz).date()
    start = min(max(week or today, MIN_DAY), MAX_DAY)
    monday = start - dt.timedelta(days=start.weekday())
    days = week_of(state, commune, monday)
    slots = [s.name for s in commune.slots]
    return render(
        request,
        "calendar.html",
        commune=commune,
        communes=[c for c in state.deployment.communes if c.code in mine],
        days=days,
        slots=slots,
        slot_starts={s.name: s.start.strftime("%H:%M") for s in commune.slots},
        prev_week=(monday - dt.timedelta(days=7)).isoformat(),
        next_week=(monday + dt.timedelta(days=7)).isoformat(),
        monday=monday,
        today=today,
    )
