"""What a commune operator records of a village meeting, and what devices send.

``/communes/{code}/consultations`` lists the commune's open campaigns; the meeting form
records the number of people, the language, the gist per question and, optionally, a
voice message recorded on a phone (any format ffmpeg reads; checked and converted by
``audio.ingest.ingest_audio`` as recordings are). ``POST /api/v1/endpoints/{name}/consultations/
{code}/answers`` takes an answer from a smart radio or kiosk with its endpoint token.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from pipeline.audio.ingest import ingest_audio
from pipeline.errors import NotFoundError, RenderError, UsageError
from pipeline.feedback.consultation import MAX_ANSWER_CHARS, check_values, clean, communes_of
from pipeline.messages import vietnamese
from pipeline.models import LANGUAGES, Answer, Consultation
from pipeline.store import consultations as store
from pipeline.web.api import EndpointDep
from pipeline.web.auth import CommuneUser, check_csrf
from pipeline.web.pages import render
from pipeline.web.routes_bulletins import _spool, safe_upload_name
from pipeline.web.state import WebState, web_state

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1", tags=["consultations"])
MAX_PEOPLE = 10_000


def commune_campaign(state: WebState, code: str, ref: int | str) -> Consultation:
    """A campaign of an approved bulletin that reaches commune ``code``; else 404."""
    try:
        c = store.get_campaign(state.db, ref)
    except NotFoundError as exc:
        raise HTTPException(404, "Không tìm thấy đợt lấy ý kiến này.") from exc
    if c.bulletin_status != "approved" or code not in communes_of(c, state.deployment):
        raise HTTPException(404, "Không tìm thấy đợt lấy ý kiến này.")
    return c


def _closed(state: WebState, c: Consultation) -> str | None:
    today = dt.datetime.now(state.settings.tz).date()
    if not c.spec.open_on(today):
        return (
            f"Đợt lấy ý kiến {c.spec.code} chỉ nhận ý kiến từ {c.spec.opens:%d/%m/%Y} "
            f"đến {c.spec.closes:%d/%m/%Y}; hôm nay không nhận."
        )
    return None


@router.get("/communes/{code}/consultations")
def commune_campaigns(request: Request, code: str, who: CommuneUser) -> Response:
    state = web_state(request)
    rows = [
        c
        for c in store.list_campaigns(state.db)
        if c.bulletin_status == "approved" and code in communes_of(c, state.deployment)
    ]
    commune = state.deployment.commune(code)
    return render(
        request,
        "consultation_meetings.html",
        rows=rows,
        commune=commune,
        today=dt.datetime.now(state.settings.tz).date(),
    )


def _meeting_page(
    request: Request, code: str, c: Consultation, *, status: int = 200, error: str | None = None
) -> Response:
    state = web_state(request)
    commune = state.deployment.commune(code)
    assert commune is not None
    return render(
        request,
        "consultation_meeting.html",
        status=status,
        c=c,
        commune=commune,
        closed=_closed(state, c),
        error=error,
        notice=request.query_params.get("ok") and "recorded",
        NOTICE_VI="Đã ghi nhận ý kiến của buổi họp. Cảm ơn!",
        max_chars=MAX_ANSWER_CHARS,
    )


@router.get("/communes/{code}/consultations/{consultation_id}/meeting")
def meeting_form(request: Request, code: str, consultation_id: int, who: CommuneUser) -> Response:
    return _meeting_page(request, code, commune_campaign(web_state(request), code, consultation_id))


@router.post("/communes/{code}/consultations/{consultation_id}/meeting", dependencies=[Depends(check_csrf)])
async def meeting_post(request: Request, code: str, consultation_id: int, who: CommuneUser) -> Response:
    state = web_state(request)
    c = commune_campaign(state, code, consultation_id)
    commune = state.deployment.commune(code)
    assert commune is not None
    closed = _closed(state, c)
    if closed:
        raise HTTPException(403, closed)
    form = await request.form()
    workdir = state.settings.data_dir / "tmp" / "uploads" / uuid.uuid4().hex
    dest: Path | None = None
    try:
        people_raw = str(form.get("people", "")).strip()
        if not people_raw.isdigit() or not 1 <= int(people_raw) <= MAX_PEOPLE:
            raise UsageError(f"Số người dự họp phải là số từ 1 đến {MAX_PEOPLE}.")
        language = str(form.get("language", ""))
        if language not in commune.languages:
            raise UsageError("Hãy chọn ngôn ngữ của buổi họp.")
        n = len(c.spec.questions)
        raw = [str(form.get(f"q{i}", "")) for i in range(1, n + 1)]
        notes = tuple(clean(str(form.get(f"note{i}", ""))) for i in range(1, n + 1))
        if any(len(str(form.get(f"note{i}", ""))) > MAX_ANSWER_CHARS for i in range(1, n + 1)):
            raise UsageError(f"Mỗi ý chính tối đa {MAX_ANSWER_CHARS} ký tự.")
        try:
            values = check_values(c, raw)
        except UsageError as exc:
            raise UsageError(f"Câu trả lời chưa hợp lệ. {vietnamese(exc)} Hãy chọn lại.") from None
        if not any(values) and not any(notes):
            raise UsageError("Hãy ghi ý chính của bà con cho ít nhất một câu hỏi.")
        upload = form.get("voice")
        recording = ""
        if isinstance(upload, UploadFile) and upload.filename:
            workdir.mkdir(parents=True)
            src = workdir / f"upload{Path(safe_upload_name(upload.filename)).suffix.lower()[:6]}"
            await _spool(upload, src, state.settings.web.max_upload_mb * 1024 * 1024)
            rel = Path("consultations") / str(c.id) / f"{uuid.uuid4().hex}.wav"
            dest = state.settings.data_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                ingest_audio(src, dest, settings=state.settings.audio)
            except RenderError as exc:
                raise UsageError(
                    "Tệp ghi âm không phải âm thanh đọc được (hoặc quá dài, hoặc im lặng); "
                    "hãy ghi lại bằng điện thoại rồi tải lên."
                ) from exc
            recording = str(rel)
    except UsageError as exc:
        if dest is not None:
            dest.unlink(missing_ok=True)
        return _meeting_page(request, code, c, status=400, error=str(exc))
    finally:
        await form.close()
        shutil.rmtree(workdir, ignore_errors=True)
    store.add_answer(
        state.db,
        Answer(
            consultation_id=c.id,
            channel="meeting",
            values=values,
            notes=notes,
            commune=code,
            language=language,
            people=int(people_raw),
            recording=recording,
            source=who.user.name,
        ),
    )
    log.info("consultation %s: meeting of %s people in %s recorded by %s", c.spec.code, people_raw, code, who.user.name)
    return RedirectResponse(f"/communes/{code}/consultations/{c.id}/meeting?ok=1", status_code=303)


# --- devices ---------------------------------------------------------------------


class DeviceAnswer(BaseModel):
    values: list[Annotated[str, Field(max_length=MAX_ANSWER_CHARS)]] = Field(max_length=5)
    language: str = "vi"
    people: int = Field(default=1, ge=1, le=MAX_PEOPLE)


class Received(BaseModel):
    id: int
    consultation: str
    commune: str


@api_router.post(
    "/endpoints/{name}/consultations/{code}/answers",
    summary="An answer to a consultation from a smart radio or kiosk of this endpoint's commune",
    response_model=Received,
    status_code=201,
)
async def device_answer(request: Request, name: str, code: str, endpoint: EndpointDep) -> Received:
    """Body: ``{"values": ["yes", "Giống lúa", "…"], "language": "hmn", "people": 1}``, one value per question."""
    state = web_state(request)
    try:  # read after the token is checked, so an anonymous caller learns nothing of the body's shape
        body = DeviceAnswer.model_validate(await request.json())
    except (ValueError, ValidationError) as exc:
        raise HTTPException(
            422,
            f"Nội dung gửi cho {code} phải là JSON dạng "
            '{"values": [mỗi câu hỏi một câu trả lời], "language": "vi", "people": 1}.',
        ) from exc
    try:
        c = commune_campaign(state, endpoint.commune, code)
    except HTTPException as exc:
        raise HTTPException(404, f"Không có đợt lấy ý kiến {code} ở xã {endpoint.commune}.") from exc
    if _closed(state, c):
        raise HTTPException(
            403,
            f"Đợt lấy ý kiến {c.spec.code} chỉ nhận ý kiến từ {c.spec.opens:%d/%m/%Y} đến {c.spec.closes:%d/%m/%Y}.",
        )
    if body.language not in LANGUAGES:
        raise HTTPException(422, f"Ngôn ngữ {body.language!r} không hợp lệ; dùng {', '.join(LANGUAGES)}.")
    try:
        values = check_values(c, body.values)
    except UsageError as exc:
        raise HTTPException(422, f"Câu trả lời cho {c.spec.code} chưa hợp lệ. {vietnamese(exc)}") from exc
    saved = store.add_answer(
        state.db,
        Answer(
            consultation_id=c.id,
            channel="device",
            values=values,
            commune=endpoint.commune,
            language=body.language,
            people=body.people,
            source=endpoint.name,
        ),
    )
    return Received(id=saved.id or 0, consultation=c.spec.code, commune=endpoint.commune)
