"""The agency API: departments submit bulletins with their own bearer token.

``POST /api/v1/bulletins`` takes the file ``loa bulletin add`` takes (``text/markdown``)
or its JSON form, validated by ``intake.parse_bulletin`` exactly as the CLI; the bulletin
waits for the culture center's approval. ``PUT …/recordings/{lang}`` attaches a recording
under the web's upload rules; ``GET /api/v1/bulletins/{id}`` says where it stands. An
agency sees only its own bulletins (404 for any other); a target outside its scope is 403;
an unknown or revoked token is 401; bad input is 422 with the error's code and its Vietnamese
(``messages.vietnamese``) naming the field and line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import shutil
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from pipeline import labels, lifecycle
from pipeline.audio.levels import LEVEL_WARNINGS_VI, check_reading
from pipeline.errors import BulletinError, LoaError, NotFoundError, RecordingRefused, UsageError
from pipeline.intake import MAX_FILE_BYTES, parse_bulletin, prepare_recording
from pipeline.lifecycle import reads as bulletin_store
from pipeline.messages import vietnamese
from pipeline.models import LANGUAGES, Bulletin, Deployment
from pipeline.publish.aired import aired_items
from pipeline.store import agencies as agency_store
from pipeline.store.agencies import Agency
from pipeline.textrules import shown
from pipeline.web.routes_bulletins import safe_upload_name
from pipeline.web.state import WebState, web_state

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["agency"])
bearer = HTTPBearer(auto_error=False, description="The agency's token from `loa agency token create AGENCY`.")

STATUS_API = {"draft": "awaiting", "approved": "approved", "withdrawn": "withdrawn"}
_AUDIO_EXT = {
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/mp4": ".m4a",
    "audio/x-m4a": ".m4a",
    "audio/flac": ".flac",
    "audio/x-flac": ".flac",
}


class Submitted(BaseModel):
    id: int
    status: str
    status_vi: str
    status_url: str
    outcome: str
    culture_centers: list[str]
    warnings: list[str]


class Airing(BaseModel):
    commune: str
    commune_name: str
    date: dt.date
    slot: str
    start: dt.datetime
    languages: list[str]
    aired: bool


class BulletinStatus(BaseModel):
    id: int
    title: str
    revision: int
    status: str
    status_vi: str
    public: bool
    valid_from: dt.date
    valid_until: dt.date
    culture_centers: list[str]
    airings: list[Airing]
    public_url: str | None
    consultation_url: str | None = None  # a consultation's public answer page


class RecordingOut(BaseModel):
    bulletin: int
    language: str
    sha256: str
    duration_ms: int
    outcome: str
    status: str = "awaiting"  # the bulletin's, after: an approved bulletin is awaiting approval again
    back_to_draft: bool = False
    warnings: list[str] = []  # level checks: too quiet, clipped, mostly silence (Vietnamese)


def agency_auth(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Agency:
    """The agency of a live bearer token; 401 otherwise."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "Cần mã truy cập (Authorization: Bearer …).", headers={"WWW-Authenticate": "Bearer"})
    agency = agency_store.agency_of_token(web_state(request).db, credentials.credentials)
    if agency is None:
        raise HTTPException(
            401,
            "Mã truy cập không đúng, đã bị thu hồi, hoặc cơ quan đã bị tạm dừng.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return agency


AgencyDep = Annotated[Agency, Depends(agency_auth)]


def error_body(err: LoaError, where: str, *, lines: bool = True) -> dict[str, Any]:
    """A 422 body: the Vietnamese of ``err``'s code, its code, the field and line it names, intake's own words.

    ``lines`` is False for the JSON form, whose lines are not the sender's.
    """
    field = err.fields.get("field")
    if field is None and err.code.startswith(("bulletin.front_matter", "bulletin.toml")):
        field = "front_matter"
    line = err.fields.get("line") if lines else None
    at = ", ".join(
        ([f"dòng {line}"] if isinstance(line, int) else []) + ([f"trường «{field}»"] if field is not None else [])
    )
    return {
        "detail": f"Bản tin không hợp lệ{f' ({at})' if at else ''}: {vietnamese(err)} Không có gì được lưu.",
        "code": err.code,
        "field": field,
        "line": line,
        "error": str(err).removeprefix(f"{where}: "),
    }


def _toml_value(key: str, value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and key in ("valid_from", "valid_until") and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return value
    if isinstance(value, str | int | float | list):
        return json.dumps(value, ensure_ascii=False)
    raise BulletinError(
        f"{where}: {key}: must be a text, a date, a list or true/false",
        code="bulletin.json.value",
        file=where,
        field=key,
        line=None,
    )


def text_of_json(data: Any, where: str) -> str:
    """The bulletin file a JSON body stands for (fields as in the front matter, plus ``body``)."""
    if not isinstance(data, dict):
        raise BulletinError(
            f"{where}: body: send a JSON object with the front-matter fields and a body",
            code="bulletin.json.not_object",
            file=where,
            field="body",
            line=None,
        )
    body = data.get("body")
    if not isinstance(body, str):
        raise BulletinError(
            f"{where}: body: missing; add the bulletin's text as a string",
            code="bulletin.field.missing",
            file=where,
            field="body",
            line=None,
        )
    lines = ["+++"]
    for key, value in data.items():
        if key == "body":
            continue
        if not re.fullmatch(r"[a-z_]{1,40}", str(key)):
            name = shown(key)
            raise BulletinError(
                f"{where}: {name}: unknown field", code="bulletin.field.unknown", file=where, field=name, line=None
            )
        lines.append(f"{key} = {_toml_value(key, value, where)}")
    return "\n".join([*lines, "+++", body]) + "\n"


def culture_centers(b: Bulletin, deployment: Deployment) -> list[str]:
    groups = dict.fromkeys(c.group for c in deployment.targeted(b.targets))
    names = [g.name for gid in groups if gid and (g := deployment.group(gid)) is not None]
    if None in groups:
        names.append("Trung tâm cấp tỉnh (các xã không thuộc trung tâm nào)")
    return names


async def _read_body(request: Request, limit: int) -> bytes:
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > limit:
            raise HTTPException(413, f"Tệp bản tin quá lớn (giới hạn {limit} byte).")
    return bytes(data)


_OPENAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/markdown": {
                "schema": {"type": "string"},
                "example": '+++\ntitle = "Tiêm vắc-xin sởi cho trẻ"\ncategory = "notice"\npriority = "routine"\n'
                'source = "Sở Y tế Lào Cai"\nvalid_from = 2026-12-01\nvalid_until = 2026-12-14\n'
                'targets = ["bat-xat"]\nlanguages = ["vi", "hmn"]\n+++\nTrạm y tế xã tiêm vắc-xin sởi …\n',
            },
            "application/json": {
                "schema": {"type": "object", "additionalProperties": True},
                "example": {
                    "title": "Tiêm vắc-xin sởi cho trẻ",
                    "category": "notice",
                    "priority": "routine",
                    "source": "Sở Y tế Lào Cai",
                    "valid_from": "2026-12-01",
                    "valid_until": "2026-12-14",
                    "targets": ["bat-xat"],
                    "languages": ["vi", "hmn"],
                    "body": "Trạm y tế xã tiêm vắc-xin sởi …",
                },
            },
        },
    },
    "x-codeSamples": [
        {
            "lang": "curl",
            "source": "curl -X POST https://loa.example.vn/api/v1/bulletins \\\n"
            '  -H "Authorization: Bearer $LOA_AGENCY_TOKEN" \\\n'
            '  -H "Content-Type: text/markdown" -H "Idempotency-Key: so-yte-2026-0158" \\\n'
            "  --data-binary @ban-tin.md",
        }
    ],
}


@router.post(
    "/bulletins",
    summary="Submit a bulletin (awaits the culture center's approval)",
    description="The same Markdown+TOML file `loa bulletin add` takes (`Content-Type: text/markdown`) or its "
    "JSON form. A retried request with the same `Idempotency-Key` gives the same bulletin. Example:\n\n"
    "```\ncurl -X POST https://loa.example.vn/api/v1/bulletins \\\n"
    '  -H "Authorization: Bearer $LOA_AGENCY_TOKEN" -H "Content-Type: text/markdown" \\\n'
    '  -H "Idempotency-Key: so-yte-2026-0158" --data-binary @ban-tin.md\n```',
    status_code=201,
    response_model=Submitted,
    openapi_extra=_OPENAPI_BODY,
    responses={
        401: {"description": "no token, unknown or revoked"},
        403: {"description": "a target outside the agency's scope"},
        409: {"description": "another bulletin has this title and source, or the key was used for another file"},
        422: {"description": "the file is not a valid bulletin (Vietnamese message, field, line); nothing stored"},
    },
)
async def submit(
    request: Request,
    agency: AgencyDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    state = web_state(request)
    raw = await _read_body(request, MAX_FILE_BYTES)
    digest = hashlib.sha256(raw).hexdigest()
    key = (idempotency_key or "").strip()
    if key:
        found = agency_store.idempotent_bulletin(state.db, agency.name, key)
        if found is not None:
            return _replay(request, agency, found, digest)
    where = f"api:{agency.name}"
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if ctype in ("text/markdown", "text/x-markdown"):  # as documented: anything else is 415
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BulletinError(
                    f"{where}: body: not UTF-8 text (byte {exc.start})",
                    code="bulletin.file.not_utf8",
                    file=where,
                    field="body",
                    line=None,
                    byte=exc.start,
                ) from exc
        elif ctype == "application/json":
            try:
                data = json.loads(raw)
            except ValueError as exc:
                raise BulletinError(
                    f"{where}: body: not valid JSON ({exc})",
                    code="bulletin.file.not_json",
                    file=where,
                    field="body",
                    line=None,
                ) from exc
            text = text_of_json(data, where)
        else:
            raise HTTPException(415, "Hãy gửi Content-Type: text/markdown hoặc application/json.")
        parsed = parse_bulletin(text, where=where, deployment=state.deployment)
    except BulletinError as exc:
        return JSONResponse(error_body(exc, where, lines=ctype != "application/json"), status_code=422)
    try:
        change = lifecycle.submit(
            state.db,
            lifecycle.agency(agency, state.deployment),
            parsed.bulletin,
            deployment=state.deployment,
            idempotency_key=key,
            request_sha256=digest,
        )
    except UsageError as exc:
        return _refusal(exc)
    saved, outcome = change.bulletin, change.outcome
    log.info("agency %s submitted bulletin %s (%s)", agency.name, saved.id, outcome)
    return _created(request, saved, outcome, list(parsed.warnings))


#: HTTP status of the domain's refusals (``pipeline.lifecycle``); others are 409 (a conflict with the state).
_STATUS_OF = {"lifecycle.out_of_scope": 403, "lifecycle.not_found": 404, "lifecycle.no_recording": 404}


def _refusal(err: UsageError) -> JSONResponse:
    """The domain's refusal as the API answers it: its Vietnamese and its code."""
    return JSONResponse({"detail": vietnamese(err), "code": err.code}, status_code=_STATUS_OF.get(err.code, 409))


def _created(request: Request, b: Bulletin, outcome: str, warnings: list[str]) -> Response:
    assert b.id is not None
    status = STATUS_API.get(b.status, b.status)
    body = Submitted(
        id=b.id,
        status=status,
        status_vi=labels.label(labels.AGENCY_VIEW, status),
        status_url=f"/api/v1/bulletins/{b.id}",
        outcome=outcome,
        culture_centers=culture_centers(b, web_state(request).deployment),
        warnings=warnings,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=201, headers={"location": body.status_url})


def _replay(request: Request, agency: Agency, found: tuple[int, str], digest: str) -> Response:
    bulletin_id, stored_digest = found
    if stored_digest != digest:
        return _refusal(
            UsageError("Idempotency-Key was used for another request; use a new key", code="lifecycle.key_reused")
        )
    b = bulletin_store.get_bulletin(web_state(request).db, bulletin_id)
    return _created(request, b, "replayed", [])


def own_bulletin(request: Request, agency: Agency, bulletin_id: int) -> Bulletin:
    """The agency's own bulletin, else 404 as if it did not exist."""
    state = web_state(request)
    if agency_store.owner_of(state.db, bulletin_id) != agency.name:  # the app answers 404 with its code
        raise NotFoundError(
            f"bulletin {bulletin_id}: not this agency's", code="lifecycle.not_found", bulletin=bulletin_id
        )
    return bulletin_store.get_bulletin(state.db, bulletin_id)


@router.get(
    "/bulletins/{bulletin_id}",
    summary="Where a submitted bulletin stands: awaiting, approved, on air (where, when), withdrawn, expired",
    response_model=BulletinStatus,
    responses={401: {"description": "no valid token"}, 404: {"description": "not this agency's bulletin"}},
)
def status(request: Request, bulletin_id: int, agency: AgencyDep) -> BulletinStatus:
    state = web_state(request)
    b = own_bulletin(request, agency, bulletin_id)
    now = dt.datetime.now(state.settings.tz)
    airings: dict[tuple[str, str], Airing] = {}
    if b.status == "approved":
        codes = [c.code for c in state.deployment.targeted(b.targets)]
        for item in aired_items(state.settings, communes=codes, bulletin_id=bulletin_id):
            commune = state.deployment.commune(item.commune)
            k = (item.commune, item.program_id)
            if k in airings:
                airings[k].languages.append(item.language)
                continue
            airings[k] = Airing(
                commune=item.commune,
                commune_name=commune.name if commune else item.commune,
                date=item.date,
                slot=item.slot,
                start=item.start,
                languages=[item.language],
                aired=item.start <= now,
            )
    code = STATUS_API.get(b.status, b.status)
    if code == "approved" and b.valid_until < now.date():
        code = "expired"
    elif code == "approved" and airings:
        code = "on_air"
    return BulletinStatus(
        id=bulletin_id,
        title=b.title,
        revision=b.revision,
        status=code,
        status_vi=labels.label(labels.AGENCY_VIEW, code),
        public=b.public,
        valid_from=b.valid_from,
        valid_until=b.valid_until,
        culture_centers=culture_centers(b, state.deployment),
        airings=sorted(airings.values(), key=lambda a: (a.start, a.commune)),
        public_url=f"/archive/bulletins/{bulletin_id}" if b.public and code in ("on_air", "expired") else None,
        consultation_url=_consultation_url(state, b),
    )


def _consultation_url(state: WebState, b: Bulletin) -> str | None:
    """The public answer page of the consultation ``b`` declares, if it has one."""
    if b.consultation is None:
        return None
    from pipeline.store.consultations import list_campaigns

    found = next((c for c in list_campaigns(state.db) if c.bulletin_id == b.id), None)
    return f"/y-kien/{found.spec.code}" if found is not None else None


@router.put(
    "/bulletins/{bulletin_id}/recordings/{language}",
    summary="Attach a recording in Mong, Dao or Giay (audio only, the web's upload limits)",
    description="Send the audio file as the body, e.g. `curl -X PUT -H 'Authorization: Bearer $T' "
    "-H 'Content-Type: audio/mpeg' --data-binary @ban-ghi-hmn.mp3 "
    "https://loa.example.vn/api/v1/bulletins/42/recordings/hmn`.",
    response_model=RecordingOut,
    status_code=201,
    openapi_extra={"requestBody": {"required": True, "content": {"audio/*": {"schema": {"type": "string"}}}}},
    responses={422: {"description": "not audio, wrong language, too long"}, 413: {"description": "too large"}},
)
async def put_recording(
    request: Request,
    bulletin_id: int,
    language: str,
    agency: AgencyDep,
    x_filename: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    state = web_state(request)
    actor = lifecycle.agency(agency, state.deployment)
    try:
        b = lifecycle.check(state.db, actor, "recording", bulletin_id, deployment=state.deployment)
    except UsageError as exc:
        return _refusal(exc)
    if language not in LANGUAGES:
        refused = RecordingRefused(
            f"unknown language {shown(language)!r}", reason="language", language=shown(language), field="language"
        )
        return JSONResponse(_recording_error(refused), status_code=422)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (ctype.startswith("audio/") or ctype == "application/octet-stream"):
        raise HTTPException(415, "Chỉ nhận tệp âm thanh (Content-Type: audio/…).")
    workdir = state.settings.data_dir / "tmp" / "uploads" / uuid.uuid4().hex
    try:
        name = safe_upload_name(x_filename or f"ban-ghi-{language}{_AUDIO_EXT.get(ctype, '.audio')}")
        workdir.mkdir(parents=True)
        src = workdir / (name if re.fullmatch(r"\.[a-z0-9]{1,5}", Path(name).suffix.lower()) else f"{name}.audio")
        limit = state.settings.web.max_upload_mb * 1024 * 1024
        size = 0
        with src.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, "Tệp quá lớn.")
                out.write(chunk)
        rec = prepare_recording(b, language, src, settings=state.settings)
        change = lifecycle.attach_recording(state.db, actor, rec, deployment=state.deployment)
        saved, outcome = change.recording, change.outcome
        warnings = check_reading(saved.path, settings=state.settings.audio)  # too quiet, clipped, mostly silence
    except BulletinError as exc:
        return JSONResponse(_recording_error(exc), status_code=422)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log.info("agency %s: recording %s for bulletin %s: %s", agency.name, language, bulletin_id, outcome)
    out_body = RecordingOut(
        bulletin=bulletin_id,
        language=language,
        sha256=saved.sha256,
        duration_ms=saved.duration_ms,
        outcome=outcome,
        status=STATUS_API.get(change.bulletin.status, change.bulletin.status),
        back_to_draft=change.back_to_draft,
        warnings=[LEVEL_WARNINGS_VI[w] for w in warnings],
    )
    return JSONResponse(out_body.model_dump(), status_code=201 if outcome != "unchanged" else 200)


@router.delete(
    "/bulletins/{bulletin_id}/recordings/{language}",
    summary="Remove the recording of one language (an approved bulletin waits for approval again)",
    response_model=RecordingOut,
    responses={404: {"description": "not this agency's bulletin, or no recording in that language"}},
)
def delete_recording(request: Request, bulletin_id: int, language: str, agency: AgencyDep) -> Response:
    state = web_state(request)
    actor = lifecycle.agency(agency, state.deployment)
    try:
        change = lifecycle.remove_recording(state.db, actor, bulletin_id, language, deployment=state.deployment)
    except UsageError as exc:
        return _refusal(exc)
    removed = change.recording
    out_body = RecordingOut(
        bulletin=bulletin_id,
        language=language,
        sha256=removed.sha256,
        duration_ms=removed.duration_ms,
        outcome="removed",
        status=STATUS_API.get(change.bulletin.status, change.bulletin.status),
        back_to_draft=change.back_to_draft,
    )
    return JSONResponse(out_body.model_dump(), status_code=200)


def _recording_error(err: BulletinError) -> dict[str, Any]:
    """A 422 body for a refused recording: Vietnamese from its code, and the code."""
    return {
        "detail": f"Không nhận được bản ghi. {vietnamese(err)}",
        "code": err.code,
        "field": str(err.fields.get("field", "recording")),
        "line": None,
    }
