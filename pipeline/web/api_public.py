"""The public JSON API: what aired, for a Zalo Mini App or the portal's own pages. No token.

The same content as the archive (approved public bulletins that aired; withdrawn ones
gone, expired ones marked). Browsers may call it only from ``[publish] cors_origins``.
Each answer is built once per change of what is public and kept (``public_cache.py``), with
ETag and Last-Modified; a conditional request is answered 304 without building anything.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.models import LANGUAGES
from pipeline.publish import catalog
from pipeline.web.params import ApiDay
from pipeline.web.public_cache import public_cache
from pipeline.web.routes_feeds import base_url
from pipeline.web.routes_public import audio_url, published_bulletin, text_url
from pipeline.web.state import web_state

router = APIRouter(prefix="/api/v1/public", tags=["public"])
#: Paths a browser on a configured origin may read across origins.
CORS_PREFIXES = ("/api/v1/public/", "/feeds/", "/archive/audio/", "/archive/text/")


class Audio(BaseModel):
    language: str
    language_name: str
    url: str
    transcript_url: str
    duration_ms: int
    human: bool  # a person's voice (a recording) rather than text-to-speech


class Commune(BaseModel):
    code: str
    name: str
    languages: list[str]
    feed_url: str
    archive_url: str


class PublicBulletin(BaseModel):
    id: int
    title: str
    source: str
    reference: str
    category: str
    priority: str
    valid_from: dt.date
    valid_until: dt.date
    expired: bool
    text: str
    page_url: str
    embed_url: str


class Aired(BaseModel):
    commune: str
    commune_name: str
    date: dt.date
    slot: str
    start: dt.datetime
    kind: str
    bulletin: PublicBulletin
    audio: list[Audio]


def _bulletin(e: catalog.Entry, base: str) -> PublicBulletin:
    b = e.bulletin
    assert b.id is not None
    return PublicBulletin(
        id=b.id,
        title=b.title,
        source=b.source,
        reference=b.reference,
        category=b.category,
        priority=b.priority,
        valid_from=b.valid_from,
        valid_until=b.valid_until,
        expired=e.expired,
        text=catalog.bulletin_text(b),
        page_url=f"{base}/archive/bulletins/{b.id}",
        embed_url=f"{base}/archive/embed/{b.id}",
    )


def _aired(e: catalog.Entry, base: str) -> Aired:
    return Aired(
        commune=e.commune.code,
        commune_name=e.commune.name,
        date=e.date,
        slot=e.slot,
        start=e.start,
        kind=e.kind,
        bulletin=_bulletin(e, base),
        audio=[
            Audio(
                language=a.language,
                language_name=LANGUAGES.get(a.language, a.language),
                url=base + audio_url(e.bulletin.id, a),
                transcript_url=base + text_url(e.bulletin.id, a.language),
                duration_ms=a.duration_ms,
                human=any(p.human for p in a.parts),
            )
            for a in e.audios
        ],
    )


@router.get("/communes", summary="Communes with their feeds and archive pages", response_model=list[Commune])
def communes(request: Request) -> Response:
    return public_cache(request).answer(request, lambda: _json(_COMMUNES, _communes(request)))


def _communes(request: Request) -> list[Commune]:
    state = web_state(request)
    base = base_url(request, state)
    return [
        Commune(
            code=c.code,
            name=c.name,
            languages=list(c.languages),
            feed_url=f"{base}/feeds/{c.code}.xml",
            archive_url=f"{base}/archive/communes/{c.code}",
        )
        for c in state.deployment.communes
    ]


@router.get(
    "/aired",
    summary="What aired, newest first: by commune, date and topic",
    response_model=list[Aired],
    description="Example: `curl 'https://loa.example.vn/api/v1/public/aired?commune=02641&date=2026-12-01'`",
)
def aired(
    request: Request,
    commune: Annotated[str | None, Query(description="commune code")] = None,
    date: ApiDay | None = None,
    q: Annotated[str, Query(max_length=200, description="topic words (diacritics optional)")] = "",
    language: Annotated[str | None, Query(description="vi, hmn, ium, pcc")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    return public_cache(request).answer(
        request, lambda: _json(_AIRED, _aired_list(request, commune, date, q, language, limit))
    )


def _aired_list(
    request: Request, commune: str | None, date: dt.date | None, q: str, language: str | None, limit: int
) -> list[Aired]:
    state = web_state(request)
    if commune is not None and state.deployment.commune(commune) is None:
        raise HTTPException(404, f"Không có xã mã {commune}.")
    found = catalog.entries(
        state.settings,
        state.deployment,
        state.db,
        now=dt.datetime.now(state.settings.tz),
        communes=[commune] if commune else None,
        day=date,
        query=q,
        language=language,
    )
    base = base_url(request, state)
    return [_aired(e, base) for e in found[:limit]]


@router.get("/emergencies", summary="Emergency bulletins in force (show them first)", response_model=list[Aired])
def emergencies(request: Request) -> Response:
    return public_cache(request).answer(request, lambda: _json(_AIRED, _emergencies(request)))


def _emergencies(request: Request) -> list[Aired]:
    state = web_state(request)
    now = dt.datetime.now(state.settings.tz)
    found = catalog.entries(state.settings, state.deployment, state.db, now=now)
    base = base_url(request, state)
    return [_aired(e, base) for e in catalog.emergencies_in_force(found, today=now.date())]


@router.get(
    "/bulletins/{bulletin_id}",
    summary="One published bulletin and where it aired",
    response_model=list[Aired],
    responses={404: {"description": "not published (internal, withdrawn, never aired)"}},
)
def bulletin(request: Request, bulletin_id: int) -> Response:
    return public_cache(request).answer(request, lambda: _json(_AIRED, _bulletin_airings(request, bulletin_id)))


def _bulletin_airings(request: Request, bulletin_id: int) -> list[Aired]:
    state = web_state(request)
    published_bulletin(state, bulletin_id)
    found = catalog.entries(
        state.settings, state.deployment, state.db, now=dt.datetime.now(state.settings.tz), bulletin_id=bulletin_id
    )
    if not found:
        raise HTTPException(404, "Bản tin này chưa được phát.")
    base = base_url(request, state)
    return [_aired(e, base) for e in found]


_AIRED = TypeAdapter(list[Aired])
_COMMUNES = TypeAdapter(list[Commune])


def _json(adapter: TypeAdapter[Any], value: object) -> Response:
    return Response(adapter.dump_json(value), media_type="application/json")


class PublicCors:
    """CORS for the public paths only, and only for the configured origins (GET, no credentials)."""

    def __init__(self, app: ASGIApp, *, origins: tuple[str, ...]) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["GET", "HEAD"],
            allow_headers=["If-None-Match", "Range"],
            expose_headers=["ETag", "Last-Modified", "Content-Range", "Content-Length"],
            allow_credentials=False,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(CORS_PREFIXES):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
