"""A reader's queue (phone first): what to record, by when, and the recorder for each.

The queue is planned by the orchestrator (``pipeline.readings.reading_queue`` over
``Producer.plan_day``); a submitted reading goes through the same upload gate and the same
lifecycle as every recording (``routes_bulletins.receive_recording``), so the reader's
languages and scope are the domain's checks, not this page's.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from pipeline import lifecycle
from pipeline.errors import NotFoundError, UsageError
from pipeline.messages import vietnamese
from pipeline.produce import Producer
from pipeline.readings import reading_queue
from pipeline.web.auth import Authed, check_csrf, require_role
from pipeline.web.pages import render
from pipeline.web.routes_bulletins import MAX_ID, receive_recording
from pipeline.web.state import WebState, web_state

router = APIRouter(include_in_schema=False)
ReaderUser = Annotated[Authed, Depends(require_role("reader"))]  # and admins
MAX_TRANSCRIPT = 20_000  # characters of the text as read


def _actor(state: WebState, who: Authed) -> lifecycle.Actor:
    return lifecycle.web_user(who.user, state.deployment)


def _queue_page(
    request: Request, state: WebState, who: Authed, *, error: str | None = None, status: int = 200
) -> Response:
    actor = _actor(state, who)
    entries = reading_queue(
        Producer(settings=state.settings, deployment=state.deployment, db=state.db),
        languages=actor.languages,
        communes=actor.communes,
        now=dt.datetime.now(state.settings.tz),
        days=state.settings.readers.horizon_days,
    )
    warnings = [w for w in (request.query_params.get("warn") or "").split(",") if w]
    return render(
        request,
        "readings.html",
        status=status,
        entries=entries,
        names={c.code: c.name for c in state.deployment.communes},
        warnings=warnings,
        warn_language=request.query_params.get("lang", ""),
        notice=request.query_params.get("ok"),
        upload_error=error,
        horizon=state.settings.readers.horizon_days,
    )


@router.get("/readings")
def queue(request: Request, who: ReaderUser) -> Response:
    return _queue_page(request, web_state(request), who)


@router.post("/readings/{bulletin_id}", dependencies=[Depends(check_csrf)])
async def submit_reading(request: Request, bulletin_id: int, who: ReaderUser) -> Response:
    """A reading recorded in the browser or a phone file, with the text as read (optional)."""
    state = web_state(request)
    form = await request.form()
    language = str(form.get("language", ""))
    transcript = unicodedata.normalize("NFC", str(form.get("transcript", "") or "").strip())[:MAX_TRANSCRIPT]
    actor = _actor(state, who)
    error: str | None = None
    try:
        if not 0 < bulletin_id <= MAX_ID:
            raise HTTPException(404, "Không tìm thấy bản tin này.")
        b = lifecycle.check(state.db, actor, "recording", bulletin_id, deployment=state.deployment)
        change, warnings = await receive_recording(state, actor, b, language, form.get("file"), transcript=transcript)
    except NotFoundError as exc:
        raise HTTPException(404, "Không tìm thấy bản tin này.") from exc
    except UsageError as exc:  # a refused recording is audited already
        error = vietnamese(exc)
    finally:
        await form.close()  # the spooled upload
    if error is not None:
        return _queue_page(request, state, who, error=f"Không nhận được bản đọc. {error}", status=400)
    ok = "recording_redraft" if change.back_to_draft else "recording"
    warn = f"&warn={','.join(warnings)}&lang={language}&b={bulletin_id}" if warnings else ""
    return RedirectResponse(f"/readings?ok={ok}{warn}", status_code=303)
