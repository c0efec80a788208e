"""A week per commune: what airs in which slot, what is deferred, what lacks a recording.

Read-only: the same planning the nightly build uses (``plan.plan_commune_day`` over the
approved bulletins of each day and their current recordings); nothing is built or stored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from pipeline import plan as plan_stage
from pipeline.models import LANGUAGES, TTS_LANGUAGES, Commune, Deferral, ProgramPlan
from pipeline.produce import spoken_form
from pipeline.store import bulletins as bulletin_store
from pipeline.store.recordings import current_recordings
from pipeline.web.auth import Reader, scope_communes
from pipeline.web.pages import SLOT_VI, render
from pipeline.web.state import WebState, web_state

router = APIRouter(include_in_schema=False)
MIN_DAY, MAX_DAY = dt.date(2000, 1, 3), dt.date(2199, 12, 28)


@dataclass(frozen=True, slots=True)
class Cell:
    plan: ProgramPlan
    missing: tuple[str, ...]  # "#3 Tiếng Mông"
    deferred: tuple[str, ...]  # Vietnamese reasons


def deferral_vi(d: Deferral) -> str:
    title = f"#{d.bulletin.id} {d.bulletin.title}"
    if "none of the commune's languages" in d.reason:
        return f"{title}: không có ngôn ngữ nào của xã, không phát"
    if d.until_slot is None:
        return f"{title}: không đủ thời lượng, hết hiệu lực nên không phát nữa"
    day, _, slot = d.until_slot.rpartition(" ")
    when = SLOT_VI.get(slot, slot)
    if day:
        with contextlib.suppress(ValueError):
            when += f" ngày {dt.date.fromisoformat(day):%d/%m/%Y}"
    return f"{title}: không đủ thời lượng, hoãn sang {when.lower()}"


def week_of(state: WebState, commune: Commune, monday: dt.date) -> list[tuple[dt.date, dict[str, Cell]]]:
    spoken = spoken_form(state.settings)
    out = []
    for i in range(7):
        day = monday + dt.timedelta(days=i)
        bulletins = bulletin_store.airable_bulletins(state.db, day)
        recordings = current_recordings(state.db, [b.id for b in bulletins if b.id is not None])
        cells = {}
        for p in plan_stage.plan_commune_day(day, commune, bulletins=bulletins, recordings=recordings, spoken=spoken):
            missing = tuple(
                f"#{item.bulletin.id} {LANGUAGES.get(lang, lang)}"
                for item in p.items
                for lang in item.languages
                if lang not in TTS_LANGUAGES and (item.bulletin.id, lang) not in recordings
            )
            cells[p.slot.name] = Cell(p, missing, tuple(deferral_vi(d) for d in p.deferred))
        out.append((day, cells))
    return out


@router.get("/calendar")
def calendar_home(request: Request, who: Reader) -> Response:
    state = web_state(request)
    mine = sorted(scope_communes(who.user, state.deployment))
    if not mine:
        raise HTTPException(404, "Không có xã nào trong phạm vi của bạn.")
    return RedirectResponse(f"/calendar/{mine[0]}", status_code=303)


@router.get("/calendar/{code}")
def calendar(request: Request, code: str, who: Reader, week: str = "") -> Response:
    state = web_state(request)
    commune = state.deployment.commune(code)
    mine = scope_communes(who.user, state.deployment)
    if commune is None or code not in mine:
        raise HTTPException(404, "Không tìm thấy xã này.")
    today = dt.datetime.now(state.settings.tz).date()
    try:
        start = dt.date.fromisoformat(week) if week else today
    except ValueError:
        start = today
    start = min(max(start, MIN_DAY), MAX_DAY)
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
