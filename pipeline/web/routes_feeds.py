"""Podcast feeds: ``/feeds/province.xml``, ``/feeds/{commune}.xml``, ``/feeds/{commune}/{lang}.xml``.

A feed is built once per change of what is public and kept (``pipeline/web/public_cache.py``):
ETag and Last-Modified on every feed; If-None-Match (first) and If-Modified-Since give 304
without building anything. The enclosure of each item is the archive's MP3 (Range
supported there); it is made before the feed is answered so that ``length`` is the size served.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from pipeline.errors import RenderError
from pipeline.lifecycle import reads as bulletin_store
from pipeline.models import LANGUAGES
from pipeline.publish import catalog
from pipeline.publish.aired import AiredItem
from pipeline.publish.audio import published_mp3
from pipeline.publish.catalog import Entry
from pipeline.publish.feeds import FeedItem, channel_png, commune_items, province_items, render_feed
from pipeline.web.public_cache import public_cache
from pipeline.web.routes_public import audio_url, text_url
from pipeline.web.state import WebState, web_state

router = APIRouter(tags=["feeds"])
RSS = "application/rss+xml; charset=utf-8"


def base_url(request: Request, state: WebState) -> str:
    configured = state.settings.publish.base_url.rstrip("/")
    return configured or str(request.base_url).rstrip("/")


def _items(state: WebState, picked: list[tuple[Entry, AiredItem, str]]) -> list[FeedItem]:
    out: list[FeedItem] = []
    for e, a, guid in picked[: state.settings.publish.feed_items]:
        try:
            length = published_mp3(a, settings=state.settings).stat().st_size
        except (RenderError, OSError):
            continue  # the outbox no longer has its segments: leave it out rather than lie about the size
        out.append(FeedItem(entry=e, audio=a, guid=guid, length=length))
    return out


def _last_modified(state: WebState, items: list[FeedItem]) -> dt.datetime:
    """The newest airing, approval or withdrawal that can change this feed (whole seconds, UTC)."""
    times = [i.entry.start for i in items] + [
        i.entry.bulletin.approved_at for i in items if i.entry.bulletin.approved_at
    ]
    times += [b.withdrawn_at for b in bulletin_store.list_bulletins(state.db, status="withdrawn") if b.withdrawn_at]
    newest = max(times, default=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    return newest.astimezone(dt.UTC).replace(microsecond=0)


def _answer(
    request: Request,
    state: WebState,
    picked: list[tuple[Entry, AiredItem, str]],
    *,
    title: str,
    description: str,
    language: str,
    self_path: str,
    page_path: str,
) -> Response:
    """The feed as built now (its ETag: of its bytes); the cache decides whether to build it at all."""
    base = base_url(request, state)
    items = _items(state, picked)
    feed = render_feed(
        settings=state.settings,
        base_url=base,
        self_path=self_path,
        title=title,
        description=description,
        language=language,
        items=items,
        page_path=page_path,
        audio_url=lambda fi: base + audio_url(fi.entry.bulletin.id, fi.audio),
        text_url=lambda fi: base + text_url(fi.entry.bulletin.id, fi.audio.language),
        last_modified=_last_modified(state, items),
    )
    headers = {"etag": feed.etag, "last-modified": email.utils.format_datetime(feed.last_modified, usegmt=True)}
    return Response(feed.body, media_type=RSS, headers=headers)


@router.get("/feeds/province.xml", summary="Podcast feed of the whole province", response_class=Response)
def province(request: Request) -> Response:
    return public_cache(request).answer(request, lambda: _province(request))


def _province(request: Request) -> Response:
    state = web_state(request)
    entries = catalog.entries(state.settings, state.deployment, state.db, now=dt.datetime.now(state.settings.tz))
    title = state.settings.publish.title
    return _answer(
        request,
        state,
        province_items(entries),
        title=title,
        description=f"{title}: các bản tin chính sách đã phát trên loa xã, kèm nội dung.",
        language="vi",
        self_path="/feeds/province.xml",
        page_path="/archive",
    )


@router.get("/feeds/image.png", summary="The feeds' channel image", response_class=Response)
def image() -> Response:
    return Response(_png(), media_type="image/png", headers={"cache-control": "public, max-age=86400"})


@functools.cache
def _png() -> bytes:
    return channel_png()


@router.get("/feeds/{code}.xml", summary="Podcast feed of one commune (all its languages)", response_class=Response)
def commune_feed(request: Request, code: str) -> Response:
    return public_cache(request).answer(request, lambda: _commune(request, code, None))


@router.get(
    "/feeds/{code}/{language}.xml", summary="Podcast feed of one commune in one language", response_class=Response
)
def commune_language_feed(request: Request, code: str, language: str) -> Response:
    return public_cache(request).answer(request, lambda: _commune(request, code, language))


def _commune(request: Request, code: str, language: str | None) -> Response:
    state = web_state(request)
    commune = state.deployment.commune(code)
    if commune is None or (language is not None and language not in commune.languages):
        raise HTTPException(404, "Không có nguồn tin này: hãy kiểm tra mã xã và ngôn ngữ.")
    entries = catalog.entries(
        state.settings, state.deployment, state.db, now=dt.datetime.now(state.settings.tz), communes=[code]
    )
    lang_name = f" — {LANGUAGES.get(language, language)}" if language else ""
    suffix = f"/{language}" if language else ""
    return _answer(
        request,
        state,
        commune_items(entries, language),
        title=f"Đài truyền thanh xã {commune.name}{lang_name}",
        description=f"Các bản tin đã phát trên loa xã {commune.name}{lang_name}, kèm nội dung bằng tiếng Việt.",
        language=language or "vi",
        self_path=f"/feeds/{code}{suffix}.xml",
        page_path=f"/archive/communes/{code}",
    )
