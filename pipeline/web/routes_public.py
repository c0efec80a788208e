"""The public archive: what aired, by commune, date and slot, with audio and text; no login, no JavaScript.

Pages are small server-rendered HTML (one 1 kB stylesheet, ``preload="none"`` audio) so a
cheap phone on 2G can use them. Only approved public bulletins appear; a withdrawn one is
gone at once (its pages, audio and text answer 404); an expired one stays, marked expired;
emergency bulletins in force stand at the top.

Every page is built once per change of what is public and kept (``public_cache.py``); caches
may keep pages and audio for ``[publish] max_age_s`` (60 s) and then revalidate (ETag,
Last-Modified), so a withdrawal reaches a CDN within that time.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response

from pipeline.errors import LoaError, RenderError
from pipeline.lifecycle import reads as bulletin_store
from pipeline.models import LANGUAGES, Bulletin
from pipeline.publish import catalog
from pipeline.publish.aired import AiredItem, aired_items
from pipeline.publish.audio import published_mp3
from pipeline.web.pages import SLOT_VI, render
from pipeline.web.params import QueryDate, path_day
from pipeline.web.public_cache import http_date, not_modified, public_cache
from pipeline.web.state import WebState, web_state

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 40
PathDay = Annotated[dt.date, Depends(path_day("day"))]


def not_found(message: str = "Không tìm thấy trang này.") -> HTTPException:
    return HTTPException(404, message)


def now_local(state: WebState) -> dt.datetime:
    return dt.datetime.now(state.settings.tz)


def audio_url(bulletin_id: int | None, item: AiredItem) -> str:
    return f"/archive/audio/{bulletin_id}/{item.key}.mp3"


def text_url(bulletin_id: int | None, language: str) -> str:
    return f"/archive/text/{bulletin_id}/{language}.txt"


def _context(state: WebState) -> dict[str, Any]:
    return {
        "communes": sorted(state.deployment.communes, key=lambda c: c.name),
        "SLOT_VI": SLOT_VI,
        "audio_url": audio_url,
        "text_url": text_url,
        "text_for": catalog.text_for,
        "LANGUAGES": LANGUAGES,
        "tz": state.settings.tz,
    }


def _public(request: Request, name: str, *, status: int = 200, **context: Any) -> Response:
    state = web_state(request)
    response = render(request, f"public/{name}", status=status, **(_context(state) | context))
    response.headers["cache-control"] = public_cache(request).cache_control
    return response


@router.get("/archive")
def home(request: Request, day: QueryDate, commune: str = "", q: str = "") -> Response:
    return public_cache(request).answer(request, lambda: _home(request, day, commune, q))


def _home(request: Request, day: dt.date | None, commune: str, q: str) -> Response:
    state = web_state(request)
    now = now_local(state)
    if commune and state.deployment.commune(commune) is None:
        commune = ""
    searched = bool(commune or day or q.strip())
    found = catalog.entries(
        state.settings,
        state.deployment,
        state.db,
        now=now,
        communes=[commune] if commune else None,
        day=day,
        query=q[:200],
    )
    emergencies = catalog.emergencies_in_force(
        found if not searched else catalog.entries(state.settings, state.deployment, state.db, now=now),
        today=now.date(),
    )
    return _public(
        request,
        "home.html",
        entries=found[:PAGE_SIZE],
        more=max(0, len(found) - PAGE_SIZE),
        emergencies=emergencies,
        searched=searched,
        query={"commune": commune, "date": day.isoformat() if day else "", "q": q[:200]},
        today=now.date(),
    )


@router.get("/archive/communes/{code}")
def commune_page(request: Request, code: str) -> Response:
    return public_cache(request).answer(request, lambda: _commune_page(request, code))


def _commune_page(request: Request, code: str) -> Response:
    state = web_state(request)
    commune = state.deployment.commune(code)
    if commune is None:
        raise not_found("Không tìm thấy xã này.")
    now = now_local(state)
    found = catalog.entries(state.settings, state.deployment, state.db, now=now, communes=[code])
    by_day: dict[dt.date, dict[str, list[catalog.Entry]]] = {}
    for e in found:
        by_day.setdefault(e.date, {}).setdefault(e.slot, []).append(e)
    return _public(request, "commune.html", commune=commune, by_day=by_day, today=now.date())


@router.get("/archive/communes/{code}/{day}")
def day_page(request: Request, code: str, date: PathDay) -> Response:
    return public_cache(request).answer(request, lambda: _day_page(request, code, date))


def _day_page(request: Request, code: str, date: dt.date) -> Response:
    state = web_state(request)
    commune = state.deployment.commune(code)
    if commune is None:
        raise not_found("Không tìm thấy xã hoặc ngày này.")
    now = now_local(state)
    found = catalog.entries(state.settings, state.deployment, state.db, now=now, communes=[code], day=date)
    slots: dict[str, list[catalog.Entry]] = {}
    for e in sorted(found, key=lambda e: (e.start, e.bulletin.id or 0)):
        slots.setdefault(e.slot, []).append(e)
    return _public(request, "day.html", commune=commune, date=date, slots=slots, today=now.date())


def published_bulletin(state: WebState, bulletin_id: int) -> Bulletin:
    try:
        b = bulletin_store.get_bulletin(state.db, bulletin_id)
    except LoaError as exc:  # NotFoundError: the same Vietnamese 404 as a withdrawn one
        raise not_found("Không tìm thấy bản tin này. Có thể bản tin đã bị thu hồi.") from exc
    if not catalog.publishable(b):
        raise not_found("Không tìm thấy bản tin này. Có thể bản tin đã bị thu hồi.")
    return b


@router.get("/archive/bulletins/{bulletin_id}")
def bulletin_page(request: Request, bulletin_id: int) -> Response:
    return public_cache(request).answer(request, lambda: _bulletin_page(request, bulletin_id))


def _bulletin_page(request: Request, bulletin_id: int) -> Response:
    state = web_state(request)
    b = published_bulletin(state, bulletin_id)
    now = now_local(state)
    found = catalog.entries(state.settings, state.deployment, state.db, now=now, bulletin_id=bulletin_id)
    if not found:
        raise not_found("Bản tin này chưa được phát.")
    return _public(request, "bulletin.html", b=b, latest=found[0], airings=found, today=now.date())


@router.get("/archive/embed/{bulletin_id}")
def embed(request: Request, bulletin_id: int) -> Response:
    """The player snippet for the portal: audio and text, to put in an ``<iframe>``."""
    return public_cache(request).answer(request, lambda: _embed(request, bulletin_id))


def _embed(request: Request, bulletin_id: int) -> Response:
    state = web_state(request)
    b = published_bulletin(state, bulletin_id)
    found = catalog.entries(state.settings, state.deployment, state.db, now=now_local(state), bulletin_id=bulletin_id)
    if not found:
        raise not_found("Bản tin này chưa được phát.")
    response = _public(request, "embed.html", b=b, latest=found[0])
    origins = " ".join(state.settings.publish.cors_origins) or "'none'"
    response.headers["x-loa-frame-ancestors"] = origins  # SecurityHeadersMiddleware reads it
    return response


def _aired_item(state: WebState, bulletin_id: int, key: str) -> AiredItem | None:
    """The aired item of a published bulletin whose joined audio has content key ``key``."""
    try:
        b = published_bulletin(state, bulletin_id)
    except HTTPException:
        return None
    codes = [c.code for c in state.deployment.targeted(b.targets)]
    now = now_local(state)
    for item in aired_items(state.settings, communes=codes, bulletin_id=bulletin_id):
        if item.key == key and item.start <= now:
            return item
    return None


@router.get("/archive/audio/{bulletin_id}/{key}.mp3")
def audio(request: Request, bulletin_id: int, key: str) -> Response:
    """The mastered MP3 that aired (joined per bulletin and language), with ETag and Range.

    Its bytes never change (the key is their content), but it stops being public at a
    withdrawal: caches keep it ``max_age_s`` and then revalidate, and a revalidation is
    answered (304 or 404) from whether it is still public, without touching the file.
    """
    state = web_state(request)
    cache = public_cache(request)
    item = cache.value(f"audio:{bulletin_id}:{key}", lambda: _aired_item(state, bulletin_id, key))
    if item is None:
        raise not_found("Không tìm thấy tệp âm thanh này. Có thể bản tin đã bị thu hồi.")
    etag = f'"{key[:32]}"'
    headers = {"etag": etag, "cache-control": cache.cache_control, "last-modified": http_date(item.start)}
    if not_modified(request, etag, item.start):
        return Response(status_code=304, headers=headers)
    try:
        path = published_mp3(item, settings=state.settings)
    except RenderError as exc:
        raise not_found("Tệp âm thanh này không còn trên máy chủ.") from exc
    return FileResponse(path, media_type="audio/mpeg", stat_result=path.stat(), headers=headers)


@router.get("/archive/text/{bulletin_id}/{language}.txt")
def transcript(request: Request, bulletin_id: int, language: str) -> Response:
    """The text that goes with the audio in ``language`` (the feeds' ``podcast:transcript``)."""
    return public_cache(request).answer(request, lambda: _transcript(request, bulletin_id, language))


def _transcript(request: Request, bulletin_id: int, language: str) -> Response:
    state = web_state(request)
    b = published_bulletin(state, bulletin_id)
    if language not in b.languages:
        raise not_found("Bản tin không có ngôn ngữ này.")
    assert b.id is not None
    typed = catalog.reading_transcripts(state.db, [b.id]).get((b.id, language), "")
    return PlainTextResponse(
        catalog.text_for(b, language, transcript=typed), headers={"content-language": language if typed else "vi"}
    )
