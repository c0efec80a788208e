"""The pull API: a commune PC or a smart radio fetches what is its own, with a bearer token.

``GET /api/v1/endpoints/{name}/programs?date=`` gives the endpoint's signed manifest of
the day (``loa.manifest/2``, the exact bytes the signature covers);
``GET /api/v1/endpoints/{name}/emergencies`` the emergency bulletins in force;
``GET /api/v1/endpoints/{name}/files/{path}`` a file, with ETag, If-None-Match and
Range — ``<folder>/manifest.json`` and ``<folder>/manifest.json.sig`` are the
endpoint's own manifest and signature, as they land on an SFTP endpoint. No cookies, no
CSRF: the token is the credential, and a token of one endpoint sees nothing of another (404).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from pipeline import manifest as mf
from pipeline.models import Endpoint
from pipeline.package import MANIFESTS
from pipeline.store import tokens as token_store
from pipeline.web.outbox import active_emergencies, commune_root, confined, endpoint_manifest
from pipeline.web.params import ApiDay
from pipeline.web.state import web_state

router = APIRouter(prefix="/api/v1", tags=["pull"])
bearer = HTTPBearer(auto_error=False, description="The endpoint's token from `loa token create ENDPOINT`.")


class Me(BaseModel):
    endpoint: str
    commune: str
    format: str
    today: dt.date
    timezone: str


class Emergency(BaseModel):
    folder: str  # fetch <folder>/manifest.json and <folder>/manifest.json.sig from the files route
    bulletin: int
    title: str
    expires: dt.datetime


def endpoint_auth(
    name: str,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Endpoint:
    """The endpoint ``name`` if the bearer token is its own: 401 without a valid token, else 404."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401, "Cần mã truy cập (Authorization: Bearer …) của điểm nhận.", headers={"WWW-Authenticate": "Bearer"}
        )
    state = web_state(request)
    owner = token_store.owner_of_token(state.db, "endpoint", credentials.credentials)
    if owner is None:
        raise HTTPException(401, "Mã truy cập không đúng hoặc đã bị thu hồi.", headers={"WWW-Authenticate": "Bearer"})
    endpoint = state.deployment.endpoint(name)
    if owner != name or endpoint is None:
        raise HTTPException(404, f"Không tìm thấy điểm nhận {name}.")
    return endpoint


EndpointDep = Annotated[Endpoint, Depends(endpoint_auth)]


def token_endpoint(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Endpoint:
    """The endpoint the bearer token belongs to (401 without a valid token)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401, "Cần mã truy cập (Authorization: Bearer …) của điểm nhận.", headers={"WWW-Authenticate": "Bearer"}
        )
    state = web_state(request)
    owner = token_store.owner_of_token(state.db, "endpoint", credentials.credentials)
    endpoint = state.deployment.endpoint(owner) if owner else None
    if endpoint is None:
        raise HTTPException(401, "Mã truy cập không đúng hoặc đã bị thu hồi.", headers={"WWW-Authenticate": "Bearer"})
    return endpoint


@router.get("/me", summary="Which endpoint this token belongs to, and the server's date", response_model=Me)
def me(request: Request, endpoint: Annotated[Endpoint, Depends(token_endpoint)]) -> Me:
    state = web_state(request)
    return Me(
        endpoint=endpoint.name,
        commune=endpoint.commune,
        format=endpoint.format,
        today=dt.datetime.now(state.settings.tz).date(),
        timezone=state.deployment.timezone,
    )


def _etag_of(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest() + '"'


def _json(request: Request, data: Any) -> Response:
    response = JSONResponse(data)
    etag = _etag_of(bytes(response.body))
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"etag": etag})
    response.headers["etag"] = etag
    response.headers["cache-control"] = "no-cache"
    return response


@router.get(
    "/endpoints/{name}/programs",
    summary="The day's manifest for this endpoint",
    responses={404: {"description": "no program built for that date"}, 401: {"description": "no valid token"}},
)
def programs(
    request: Request,
    endpoint: EndpointDep,
    date: ApiDay,
) -> Response:
    path = endpoint_manifest(web_state(request).settings, endpoint, f"programs/{date.isoformat()}")
    if path is None:
        raise HTTPException(404, f"Điểm nhận {endpoint.name}: chưa có chương trình cho ngày {date:%d/%m/%Y}.")
    data = path.read_bytes()  # the signed bytes, as they are: a device checks the signature on them
    etag = _etag_of(data)
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"etag": etag})
    return Response(data, media_type="application/json", headers={"etag": etag, "cache-control": "no-cache"})


@router.get(
    "/endpoints/{name}/emergencies",
    summary="Emergency bulletins in force for this endpoint (play at once)",
    response_model=list[Emergency],
)
def emergencies(request: Request, endpoint: EndpointDep) -> Response:
    state = web_state(request)
    now = dt.datetime.now(state.settings.tz)
    found = active_emergencies(state.settings, endpoint.commune, now)
    return _json(
        request,
        [
            {
                "folder": f,
                "bulletin": m.emergency.bulletin,
                "title": m.emergency.title,
                "expires": m.emergency.expires.isoformat(),
            }
            for f, m in found
            if m.emergency is not None and endpoint_manifest(state.settings, endpoint, f) is not None
        ],
    )


@router.get(
    "/endpoints/{name}/files/{path:path}",
    summary="One file of the endpoint's folder (ETag, If-None-Match, Range)",
    response_class=FileResponse,
    responses={206: {"description": "a byte range"}, 304: {"description": "not modified"}},
)
def files(request: Request, endpoint: EndpointDep, path: str) -> Response:
    settings = web_state(request).settings
    folder, _, name = path.rpartition("/")
    if name in (mf.FILE, mf.SIG_FILE):  # this endpoint's own signed manifest of the folder
        own = endpoint_manifest(settings, endpoint, folder)
        found = None if own is None else own if name == mf.FILE else own.with_name(own.name + ".sig")
        if found is not None and not found.is_file():
            found = None
    elif MANIFESTS in path.split("/"):
        found = None  # the outbox's per-endpoint manifests: a sibling endpoint's are not this token's to read
    else:
        found = confined(commune_root(settings, endpoint.commune), path)
    if found is None:
        raise HTTPException(404, f"Điểm nhận {endpoint.name}: không có tệp {path}.")
    st = found.stat()
    etag = '"' + hashlib.sha256(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:32] + '"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"etag": etag})
    media = {".mp3": "audio/mpeg", ".json": "application/json", ".sig": "application/octet-stream"}.get(found.suffix)
    return FileResponse(found, media_type=media, stat_result=st, headers={"etag": etag, "cache-control": "no-cache"})
