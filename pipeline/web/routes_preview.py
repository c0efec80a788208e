"""Preview a commune's slot: the cue sheet, and its audio rendered on demand."""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

from pipeline.errors import LoaError
from pipeline.messages import vietnamese
from pipeline.models import Bulletin, Commune
from pipeline.produce import Producer
from pipeline.web.auth import Authed, Reader, scope_communes
from pipeline.web.pages import render
from pipeline.web.params import QueryDate
from pipeline.web.routes_bulletins import visible_bulletin
from pipeline.web.state import WebState, web_state

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def _choice(
    state: WebState, who: Authed, commune: str, date: dt.date | None, bulletin: int | None
) -> tuple[list[Commune], Commune | None, dt.date, Bulletin | None]:
    mine = scope_communes(who.user, state.deployment)
    draft = visible_bulletin(state, who, bulletin) if bulletin else None
    communes = [c for c in state.deployment.communes if c.code in mine]
    if draft is not None:
        reached = {c.code for c in state.deployment.targeted(draft.targets)}
        communes = [c for c in communes if c.code in reached] or communes
    chosen = None
    if commune:
        chosen = state.deployment.commune(commune)
        if chosen is None or commune not in mine:
            raise HTTPException(404, "Không tìm thấy xã này.")
    day = date
    if day is None:
        tomorrow = dt.datetime.now(state.settings.tz).date() + dt.timedelta(days=1)
        day = max(tomorrow, draft.valid_from) if draft else tomorrow
    return communes, chosen, day, draft


@router.get("/preview")
def preview_page(
    request: Request,
    who: Reader,
    date: QueryDate,
    commune: str = "",
    slot: str = "",
    bulletin: int | None = None,
) -> Response:
    state = web_state(request)
    communes, chosen, day, draft = _choice(state, who, commune, date, bulletin)
    chosen = chosen or (communes[0] if communes else None)
    script = plan = None
    error = None
    slots = chosen.slots if chosen else ()
    slot_name = slot or (slots[0].name if slots else "")
    if chosen is not None and slot_name:
        if chosen.slot(slot_name) is None:
            error = f"Xã {chosen.name} không có buổi phát {slot_name!r}."
        else:
            try:
                plan, script = _producer(state).preview_script(day, chosen, slot_name, draft=draft)
            except LoaError as exc:
                log.info("preview %s %s %s: %s", chosen.code, day, slot_name, exc)
                error = f"Không soạn được chương trình. {vietnamese(exc)}"
    query = {"commune": chosen.code if chosen else "", "date": day.isoformat(), "slot": slot_name}
    if draft is not None and draft.id is not None:
        query["bulletin"] = str(draft.id)
    return render(
        request,
        "preview.html",
        communes=communes,
        chosen=chosen,
        day=day,
        slot=slot_name,
        draft=draft,
        plan=plan,
        script=script,
        error=error,
        audio_url=f"/preview/audio?{urlencode(query)}" if script is not None else None,
    )


@router.get("/preview/audio")
def preview_mp3(
    request: Request,
    who: Reader,
    commune: str,
    date: QueryDate,
    slot: str,
    bulletin: int | None = None,
) -> Response:
    state = web_state(request)
    _, chosen, day, draft = _choice(state, who, commune, date, bulletin)
    if chosen is None or chosen.slot(slot) is None:
        raise HTTPException(404, "Không tìm thấy buổi phát này.")
    _, script = _producer(state).preview_script(day, chosen, slot, draft=draft)
    if script is None:
        raise HTTPException(404, f"Buổi {slot} không phát vào ngày {day:%d/%m/%Y}.")
    path = _producer(state).preview_audio(script)
    return FileResponse(path, media_type="audio/mpeg")


def _producer(state: WebState) -> Producer:
    return Producer(settings=state.settings, deployment=state.deployment, db=state.db)
