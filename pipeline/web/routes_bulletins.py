"""Bulletins: list with filters, the form, revisions, recordings; approve, withdraw, dispatch."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import shutil
import unicodedata
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from pipeline import lifecycle
from pipeline.audio.levels import check_reading
from pipeline.errors import LoaError, RecordingRefused, UsageError
from pipeline.intake import prepare_recording
from pipeline.lifecycle import reads as store
from pipeline.lifecycle.reads import changes_since_approval, current_recordings
from pipeline.messages import vietnamese
from pipeline.models import CATEGORIES, PRIORITIES, STATUSES, TTS_LANGUAGES, Bulletin, Deployment, Recording, tier_of
from pipeline.store import audit
from pipeline.web.auth import Authed, Editor, Reader, check_csrf, may_see_bulletin
from pipeline.web.forms import BulletinForm, validate
from pipeline.web.pages import render
from pipeline.web.params import query_day
from pipeline.web.state import WebState, web_state

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
MAX_ID = store.MAX_ID  # ids beyond this are refused before they reach the database
_SAFE_NAME_RE = re.compile(r"^[\w\-. ()]{1,120}$")
_EXT_RE = re.compile(r"^\.[a-z0-9]{1,5}$")


def visible_bulletin(state: WebState, who: Authed, bulletin_id: int) -> Bulletin:
    """The bulletin if the user's scope reaches it; else 404, as if it did not exist."""
    if not 0 < bulletin_id <= MAX_ID:  # a huge id is no bulletin (and no database error)
        raise HTTPException(404, "Không tìm thấy bản tin này.")
    try:
        b = store.get_bulletin(state.db, bulletin_id)
    except LoaError as exc:
        raise HTTPException(404, "Không tìm thấy bản tin này.") from exc
    if not may_see_bulletin(who.user, b, state.deployment):
        raise HTTPException(404, "Không tìm thấy bản tin này.")
    return b


def lacking(b: Bulletin, deployment: Deployment, recs: dict[tuple[int, str], Recording]) -> dict[str, list[str]]:
    """Languages (not spoken by TTS) still without a recording → names of the targeted communes that need them."""
    out: dict[str, list[str]] = {}
    for commune in deployment.targeted(b.targets):
        for lang in commune.languages:
            if lang in TTS_LANGUAGES or (b.id, lang) in recs:
                continue
            out.setdefault(lang, []).append(commune.name)
    return out


@router.get("/bulletins")
def list_page(
    request: Request,
    who: Reader,
    start: Annotated[dt.date | None, Depends(query_day("date_from"))],
    end: Annotated[dt.date | None, Depends(query_day("date_to"))],
    status: str = "",
    priority: str = "",
    target: str = "",
) -> Response:
    state = web_state(request)
    items = store.list_bulletins(state.db, status=status if status in STATUSES else None)
    items = [b for b in items if may_see_bulletin(who.user, b, state.deployment)]
    if tier := tier_of(priority):
        items = [b for b in items if b.priority == tier]
    if target:
        reached = {c.code for c in state.deployment.targeted((target,))}
        items = [
            b for b in items if target in b.targets or reached & {c.code for c in state.deployment.targeted(b.targets)}
        ]
    if start:
        items = [b for b in items if b.valid_until >= start]
    if end:
        items = [b for b in items if b.valid_from <= end]
    recs = current_recordings(state.db, [b.id for b in items if b.id is not None])
    rows = [(b, lacking(b, state.deployment, recs)) for b in reversed(items)]
    return render(
        request,
        "bulletins.html",
        rows=rows,
        filters={
            "status": status,
            "priority": priority,
            "target": target,
            "date_from": start or "",
            "date_to": end or "",
        },
        statuses=STATUSES,
        priorities=PRIORITIES,
        deployment=state.deployment,
    )


@router.get("/recordings")
def recordings_page(request: Request, who: Reader) -> Response:
    state = web_state(request)
    items = [
        b
        for b in store.list_bulletins(state.db)
        if b.status in ("draft", "approved") and may_see_bulletin(who.user, b, state.deployment)
    ]
    recs = current_recordings(state.db, [b.id for b in items if b.id is not None])
    rows = [(b, lacking(b, state.deployment, recs)) for b in reversed(items)]
    return render(request, "recordings.html", rows=[r for r in rows if r[1]], complete=[r[0] for r in rows if not r[1]])


def _form_page(
    request: Request, state: WebState, form: BulletinForm, *, bulletin: Bulletin | None, status: int = 200
) -> Response:
    return render(
        request,
        "bulletin_form.html",
        status=status,
        form=form,
        bulletin=bulletin,
        deployment=state.deployment,
        categories=CATEGORIES,
        priorities=PRIORITIES,
    )


@router.get("/bulletins/new")
def new_form(request: Request, who: Editor) -> Response:
    state = web_state(request)
    today = dt.datetime.now(state.settings.tz).date()
    default_target = who.user.group or who.user.commune or "all"
    form = BulletinForm(
        values={
            "category": "notice",
            "priority": "normal",
            "valid_from": (today + dt.timedelta(days=1)).isoformat(),
            "valid_until": (today + dt.timedelta(days=7)).isoformat(),
        },
        targets=[default_target],
        languages=["vi"],
    )
    return _form_page(request, state, form, bulletin=None)


def _form_data(form: FormData) -> BulletinForm:
    values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    lists = {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in ("targets", "languages")}
    return BulletinForm.from_form(values, lists)


def _check(state: WebState, who: Authed, form: BulletinForm, where: str) -> Bulletin | None:
    """The form as a bulletin, or None with the form's errors set (the scope is the domain's to check)."""
    return validate(form, where=where, deployment=state.deployment)


@router.post("/bulletins/new", dependencies=[Depends(check_csrf)])
async def create(request: Request, who: Editor) -> Response:
    state = web_state(request)
    form = _form_data(await request.form())
    b = _check(state, who, form, f"web:{who.user.name}")
    if b is None:
        return _form_page(request, state, form, bulletin=None, status=400)
    try:
        change = lifecycle.submit(state.db, _actor(state, who), b, deployment=state.deployment, new_only=True)
    except UsageError as exc:
        form.errors["targets" if exc.code == "lifecycle.out_of_scope" else "title"] = vietnamese(exc)
        return _form_page(request, state, form, bulletin=None, status=400)
    return RedirectResponse(f"/bulletins/{change.bulletin.id}", status_code=303)


def _actor(state: WebState, who: Authed) -> lifecycle.Actor:
    return lifecycle.web_user(who.user, state.deployment)


def detail_context(state: WebState, b: Bulletin) -> dict[str, Any]:
    """What the bulletin page shows: recordings, what is lacking, revisions, changes since approval."""
    assert b.id is not None
    recs = current_recordings(state.db, [b.id])
    return {
        "b": b,
        "recordings": {lang: r for (_, lang), r in recs.items()},
        "lacking": lacking(b, state.deployment, recs),
        "revisions": list(reversed(store.revisions(state.db, b.id))),
        "communes": state.deployment.targeted(b.targets),
        "today": dt.datetime.now(state.settings.tz).date(),
        "changes": changes_since_approval(state.db, b) if b.status == "draft" else None,
        "deployment": state.deployment,
        "decisions": store.decisions(state.db, [b.id]),
        # a reading far from the Vietnamese text's length, for the approver (docs/readers.md)
        "length_warnings": {lang: w for (_, lang), r in recs.items() for w in reading_length_warnings(state, b, r)},
    }


@router.get("/bulletins/{bulletin_id}")
def detail(request: Request, bulletin_id: int, who: Reader) -> Response:
    state = web_state(request)
    b = visible_bulletin(state, who, bulletin_id)
    return render(request, "bulletin.html", notice=request.query_params.get("ok"), **detail_context(state, b))


@router.get("/bulletins/{bulletin_id}/edit")
def edit_form(request: Request, bulletin_id: int, who: Editor) -> Response:
    state = web_state(request)
    b = visible_bulletin(state, who, bulletin_id)
    return _form_page(request, state, BulletinForm.from_bulletin(b), bulletin=b)


@router.post("/bulletins/{bulletin_id}/edit", dependencies=[Depends(check_csrf)])
async def update(request: Request, bulletin_id: int, who: Editor) -> Response:
    state = web_state(request)
    current = visible_bulletin(state, who, bulletin_id)
    form = _form_data(await request.form())
    # title and source name the bulletin: a revision keeps them
    form.values["title"], form.values["source"] = current.title, current.source
    b = _check(state, who, form, f"web:{who.user.name}")
    if b is None:
        return _form_page(request, state, form, bulletin=current, status=400)
    # the form has no policy or consultation fields: a revision keeps them (docs/consultation.md)
    b = dataclasses.replace(b, policy=current.policy, stage=current.stage, consultation=current.consultation)
    try:
        change = lifecycle.revise(state.db, _actor(state, who), bulletin_id, b, deployment=state.deployment)
    except UsageError as exc:
        form.errors["targets" if exc.code == "lifecycle.out_of_scope" else "title"] = vietnamese(exc)
        return _form_page(request, state, form, bulletin=current, status=400)
    return RedirectResponse(f"/bulletins/{change.bulletin.id}?ok={change.outcome}", status_code=303)


# --- recordings -----------------------------------------------------------------


def safe_upload_name(name: str | None) -> str:
    """The client's file name if it is a plain name; a path or odd characters are refused."""
    name = unicodedata.normalize("NFC", name or "")
    if not name or "/" in name or "\\" in name or "\x00" in name or ".." in name or name.startswith("."):
        raise RecordingRefused(f"file name {name!r} is not a plain name", reason="name")
    if not _SAFE_NAME_RE.match(name):
        raise RecordingRefused(f"file name {name!r} has odd characters", reason="name_chars")
    return name


async def _spool(upload: UploadFile, dest: Path, limit: int) -> int:
    size = 0
    with dest.open("wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, "Tệp quá lớn.")
            out.write(chunk)
    return size


async def receive_recording(
    state: WebState, actor: lifecycle.Actor, b: Bulletin, language: str, upload: object, *, transcript: str = ""
) -> tuple[lifecycle.RecordingChange, tuple[str, ...]]:
    """An uploaded file through the upload gate (``prepare_recording``) and the lifecycle
    (``attach_recording``): the change and its warnings (levels, and a reading's length
    against the Vietnamese text). Refusals: ``RecordingRefused`` (audited here), ``UsageError``."""
    assert b.id is not None
    lifecycle.check(state.db, actor, "recording", b.id, deployment=state.deployment)
    try:
        return await _receive(state, actor, b, language, upload, transcript=transcript)
    except RecordingRefused as exc:
        audit.record(state.db, actor.name, "recording.refused", f"bulletin:{b.id}", exc.reason)
        raise


async def _receive(
    state: WebState, actor: lifecycle.Actor, b: Bulletin, language: str, upload: object, *, transcript: str
) -> tuple[lifecycle.RecordingChange, tuple[str, ...]]:
    if not isinstance(upload, UploadFile):
        raise RecordingRefused("no file chosen", reason="no_file")
    name = safe_upload_name(upload.filename)
    suffix = Path(name).suffix.lower()
    workdir = state.settings.data_dir / "tmp" / "uploads" / uuid.uuid4().hex
    try:
        workdir.mkdir(parents=True)
        # the probe and the copy see a generated name; only the plain client name is kept as a label
        src = workdir / (name if _EXT_RE.match(suffix) else f"{name}.audio")
        await _spool(upload, src, state.settings.web.max_upload_mb * 1024 * 1024)
        rec = prepare_recording(b, language, src, settings=state.settings)
        if transcript:
            rec = dataclasses.replace(rec, transcript=transcript)
        change = lifecycle.attach_recording(state.db, actor, rec, deployment=state.deployment)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log.info("recording %s for bulletin %s by %s: %s", language, b.id, actor.name, change.outcome)
    warnings = check_reading(rec.path, settings=state.settings.audio)  # too quiet, clipped, mostly silence
    return change, warnings + reading_length_warnings(state, b, change.recording)


def reading_length_warnings(state: WebState, b: Bulletin, rec: Recording) -> tuple[str, ...]:
    """``reading_short``/``reading_long`` when a reading is far from the Vietnamese text's length."""
    from pipeline.readings import reading_length_warnings as warnings_for

    return warnings_for(state.settings, b, rec)


@router.post("/bulletins/{bulletin_id}/recordings", dependencies=[Depends(check_csrf)])
async def upload_recording(request: Request, bulletin_id: int, who: Editor) -> Response:
    state = web_state(request)
    form = await request.form()
    try:
        b = visible_bulletin(state, who, bulletin_id)
    except HTTPException:
        await form.close()  # the spooled upload, read already by the CSRF check
        raise
    language = str(form.get("language", ""))
    error: str | None = None
    warnings: tuple[str, ...] = ()
    redrafted = False
    try:
        change, warnings = await receive_recording(state, _actor(state, who), b, language, form.get("file"))
        redrafted = change.back_to_draft
    except UsageError as exc:  # a refused recording is audited already
        error = vietnamese(exc)
    finally:
        await form.close()  # the spooled upload
    if error is not None:
        return render(
            request,
            "bulletin.html",
            status=400,
            upload_error=f"Không nhận được bản ghi. {error}",
            upload_language=language,
            **detail_context(state, visible_bulletin(state, who, bulletin_id)),
        )
    warn = f"&warn={','.join(warnings)}&lang={language}" if warnings else ""
    ok = "recording_redraft" if redrafted else "recording"
    return RedirectResponse(f"/bulletins/{bulletin_id}?ok={ok}{warn}", status_code=303)


@router.post("/bulletins/{bulletin_id}/recordings/{language}/remove", dependencies=[Depends(check_csrf)])
def remove_recording(request: Request, bulletin_id: int, language: str, who: Editor) -> Response:
    """Retire the current recording of one language; an approved bulletin goes back to draft."""
    state = web_state(request)
    visible_bulletin(state, who, bulletin_id)
    try:
        change = lifecycle.remove_recording(
            state.db, _actor(state, who), bulletin_id, language, deployment=state.deployment
        )
    except UsageError as exc:
        return render(
            request,
            "bulletin.html",
            status=404 if exc.code == "lifecycle.no_recording" else 400,
            upload_error=vietnamese(exc),
            upload_language=language,
            **detail_context(state, visible_bulletin(state, who, bulletin_id)),
        )
    ok = "recording_removed_redraft" if change.back_to_draft else "recording_removed"
    return RedirectResponse(f"/bulletins/{bulletin_id}?ok={ok}", status_code=303)


@router.get("/bulletins/{bulletin_id}/recordings/{language}")
def recording_audio(request: Request, bulletin_id: int, language: str, who: Reader) -> Response:
    state = web_state(request)
    visible_bulletin(state, who, bulletin_id)
    rec = current_recordings(state.db, [bulletin_id]).get((bulletin_id, language))
    if rec is None or not rec.path.is_file():
        raise HTTPException(404, "Chưa có bản ghi cho ngôn ngữ này.")
    return FileResponse(rec.path, media_type=_audio_type(rec.path))


def _audio_type(path: Path) -> str:
    return {
        ".mp3": "audio/mpeg",
        ".wav": "audio/wav",
        ".ogg": "audio/ogg",
        ".m4a": "audio/mp4",
        ".flac": "audio/flac",
        ".opus": "audio/ogg",
    }.get(path.suffix.lower(), "application/octet-stream")
