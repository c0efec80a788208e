"""Standard phrases per language (``/phrases``): their state, a take recorded or uploaded, approval.

A door: it parses and presents; ``pipeline.phrases`` checks who may record or approve, the
upload gate and the levels are the same as for readings.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from pipeline import lifecycle, phrases
from pipeline.audio.levels import check_reading
from pipeline.errors import NotFoundError, RecordingRefused, UsageError
from pipeline.messages import vietnamese
from pipeline.models import LANGUAGES
from pipeline.store import phrases as phrase_store
from pipeline.voices import load_catalog
from pipeline.web.auth import Authed, check_csrf, require_role
from pipeline.web.pages import render
from pipeline.web.routes_bulletins import _EXT_RE, _spool, safe_upload_name
from pipeline.web.state import WebState, web_state

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
Recorder = Annotated[Authed, Depends(require_role("editor", "approver", "reader"))]
PhraseApprover = Annotated[Authed, Depends(require_role("approver"))]


def _languages(state: WebState, who: Authed) -> tuple[str, ...]:
    used = tuple(dict.fromkeys(lang for c in state.deployment.communes for lang in c.languages))
    if who.user.role == "reader":
        return tuple(lang for lang in used if lang in who.user.languages)
    return used


def _page(request: Request, who: Authed, *, error: str | None = None, status: int = 200) -> Response:
    state = web_state(request)
    languages = _languages(state, who)
    catalog = load_catalog(state.settings.voices_dir)
    rows = phrases.phrase_states(catalog, state.db, languages)
    warnings = [w for w in (request.query_params.get("warn") or "").split(",") if w]
    return render(
        request,
        "phrases.html",
        status=status,
        groups=[(lang, LANGUAGES.get(lang, lang), [r for r in rows if r.language == lang]) for lang in languages],
        STATE_VI=phrases.STATE_VI,
        can_approve=who.user.role in phrases.APPROVERS,
        upload_error=error,
        warnings=warnings,
        notice=request.query_params.get("ok"),
    )


@router.get("/phrases")
def phrases_page(request: Request, who: Recorder) -> Response:
    return _page(request, who)


def _key(lang: str, name: str) -> str:
    if lang not in LANGUAGES or not name.replace("-", "").replace("_", "").isalnum() or len(name) > 40:
        raise HTTPException(status_code=404, detail="Không có câu mẫu này.")
    return f"{lang}/{name}"


@router.post("/phrases/{language}/{name}/recording", dependencies=[Depends(check_csrf)])
async def upload_phrase(request: Request, language: str, name: str, who: Recorder) -> Response:
    state = web_state(request)
    form = await request.form()
    try:
        key = _key(language, name)
        upload = form.get("file")
        actor = lifecycle.web_user(who.user, state.deployment)
        if not isinstance(upload, UploadFile):
            raise RecordingRefused("no file chosen", reason="no_file")
        original = safe_upload_name(upload.filename)
        suffix = Path(original).suffix.lower()
        workdir = state.settings.data_dir / "tmp" / "uploads" / uuid.uuid4().hex
        try:
            workdir.mkdir(parents=True)
            src = workdir / (original if _EXT_RE.match(suffix) else f"{original}.audio")
            await _spool(upload, src, state.settings.web.max_upload_mb * 1024 * 1024)
            catalog = load_catalog(state.settings.voices_dir)
            take = phrases.prepare_take(catalog, key, src, actor=actor, original_name=original, settings=state.settings)
            take = phrases.submit_take(state.db, actor, take)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    except (RecordingRefused, UsageError, NotFoundError) as exc:
        return _page(request, who, error=vietnamese(exc), status=400)
    finally:
        await form.close()
    log.info("phrase %s recorded by %s", key, who.user.name)
    warnings = check_reading(take.path, settings=state.settings.audio)
    query = f"ok=recorded&warn={','.join(warnings)}" if warnings else "ok=recorded"
    return RedirectResponse(f"/phrases?{query}#phrase-{language}-{name}", status_code=303)


@router.post("/phrases/{language}/{name}/approve", dependencies=[Depends(check_csrf)])
def approve(request: Request, language: str, name: str, who: PhraseApprover) -> Response:
    state = web_state(request)
    key = _key(language, name)
    try:
        phrases.approve_phrase(state.db, lifecycle.web_user(who.user, state.deployment), key)
    except (UsageError, NotFoundError) as exc:
        return _page(request, who, error=vietnamese(exc), status=400)
    return RedirectResponse(f"/phrases?ok=approved#phrase-{language}-{name}", status_code=303)


@router.get("/phrases/takes/{take_id}.wav")
def take_audio(request: Request, take_id: int, who: Recorder) -> Response:
    """A take, for the approver (and the recorder) to hear before approving."""
    state = web_state(request)
    takes = [t for v in phrase_store.current(state.db).values() for t in v.values() if t.id == take_id]
    if not takes or takes[0].language not in _languages(state, who) or not takes[0].path.is_file():
        raise HTTPException(status_code=404, detail="Không có bản thu này.")
    return FileResponse(takes[0].path, media_type="audio/wav")
