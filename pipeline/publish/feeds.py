"""Podcast RSS 2.0 feeds of what aired: province, commune, commune and language.

Each item is one bulletin in one language as it aired: a stable ``guid`` (where, when and
what — never the bytes, so a rebuild keeps it), ``pubDate`` (the slot's start), an
``enclosure`` whose ``length`` is the size of the MP3 served, the text as ``description``
and as a ``podcast:transcript`` (Podcasting 2.0) — a reading's text as read, in its
language, where its reader typed one, else the Vietnamese text —, and the iTunes tags
podcast apps read. The province feed lists each bulletin and language once (its first
airing), not once per commune.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from pipeline.config import Settings
from pipeline.models import LANGUAGES
from pipeline.publish.aired import AiredItem
from pipeline.publish.catalog import Entry, text_for, text_language
from pipeline.xmlsafe import tostring

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
ATOM = "http://www.w3.org/2005/Atom"
ET.register_namespace("itunes", ITUNES)
ET.register_namespace("podcast", PODCAST)
ET.register_namespace("atom", ATOM)


@dataclass(frozen=True, slots=True)
class FeedItem:
    entry: Entry
    audio: AiredItem
    guid: str
    length: int  # bytes of the MP3 served at the enclosure URL


@dataclass(frozen=True, slots=True)
class Feed:
    body: bytes
    etag: str
    last_modified: dt.datetime


def province_items(entries: Sequence[Entry]) -> list[tuple[Entry, AiredItem, str]]:
    """Each bulletin and language once, at its first airing."""
    first: dict[tuple[int | None, str], tuple[Entry, AiredItem]] = {}
    for e in sorted(entries, key=lambda e: e.start):
        for a in e.audios:
            first.setdefault((e.bulletin.id, a.language), (e, a))
    out = [(e, a, _guid(f"loa:province:{e.bulletin.id}:{a.language}")) for e, a in first.values()]
    out.sort(key=lambda t: t[0].start, reverse=True)
    return out


def commune_items(entries: Sequence[Entry], language: str | None = None) -> list[tuple[Entry, AiredItem, str]]:
    return [
        (e, a, e.guid(a.language))
        for e in sorted(entries, key=lambda e: e.start, reverse=True)
        for a in e.audios
        if language is None or a.language == language
    ]


def _guid(raw: str) -> str:
    return "urn:loa:" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def _sub(parent: ET.Element, tag: str, value: str | None = None, /, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if value is not None:
        el.text = value
    return el


def _duration(ms: int) -> str:
    total = round(ms / 1000)
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def render_feed(
    *,
    settings: Settings,
    base_url: str,
    self_path: str,
    title: str,
    description: str,
    language: str,
    items: Sequence[FeedItem],
    page_path: str,
    audio_url: Callable[[FeedItem], str],
    text_url: Callable[[FeedItem], str],
    last_modified: dt.datetime,
) -> Feed:
    pub = settings.publish
    image = pub.image if pub.image.startswith(("http://", "https://")) else base_url + pub.image
    rss = ET.Element("rss", {"version": "2.0"})
    ch = _sub(rss, "channel")
    _sub(ch, "title", title)
    _sub(ch, "link", base_url + page_path)
    _sub(ch, "description", description)
    _sub(ch, "language", language)
    _sub(ch, "generator", "Loa")
    _sub(ch, "lastBuildDate", email.utils.format_datetime(last_modified.astimezone(dt.UTC), usegmt=True))
    _sub(ch, f"{{{ATOM}}}link", href=base_url + self_path, rel="self", type="application/rss+xml")
    img = _sub(ch, "image")
    _sub(img, "url", image)
    _sub(img, "title", title)
    _sub(img, "link", base_url + page_path)
    _sub(ch, f"{{{ITUNES}}}image", href=image)
    _sub(ch, f"{{{ITUNES}}}author", pub.author)
    _sub(ch, f"{{{ITUNES}}}summary", description)
    _sub(ch, f"{{{ITUNES}}}explicit", "false")
    _sub(ch, f"{{{ITUNES}}}type", "episodic")
    _sub(ch, f"{{{ITUNES}}}category", text="Government")
    owner = _sub(ch, f"{{{ITUNES}}}owner")
    _sub(owner, f"{{{ITUNES}}}name", pub.author)
    _sub(ch, f"{{{PODCAST}}}locked", "no")
    for fi in items:
        e, a = fi.entry, fi.audio
        lang_name = LANGUAGES.get(a.language, a.language)
        item = _sub(ch, "item")
        item_title = f"{e.bulletin.title} ({lang_name}, xã {e.commune.name})"
        _sub(item, "title", item_title)
        _sub(item, f"{{{ITUNES}}}title", item_title)
        _sub(item, "link", f"{base_url}/archive/bulletins/{e.bulletin.id}")
        _sub(item, "guid", fi.guid, isPermaLink="false")
        _sub(item, "pubDate", email.utils.format_datetime(e.start.astimezone(dt.UTC), usegmt=True))
        typed = e.transcript(a.language)  # a reader's text as read, in that language
        _sub(item, "description", text_for(e.bulletin, a.language, transcript=typed))
        _sub(item, "enclosure", url=audio_url(fi), length=str(fi.length), type="audio/mpeg")
        _sub(item, f"{{{ITUNES}}}duration", _duration(a.duration_ms))
        _sub(item, f"{{{ITUNES}}}explicit", "false")
        _sub(item, f"{{{ITUNES}}}episodeType", "full")
        lang = text_language(a.language, typed)
        _sub(item, f"{{{PODCAST}}}transcript", url=text_url(fi), type="text/plain", language=lang)
        if e.expired:
            _sub(item, "category", "Đã hết hạn")
    ET.indent(rss)
    body = tostring(rss)  # what XML 1.0 does not allow is dropped, whatever the store holds
    return Feed(body=body, etag='"' + hashlib.sha256(body).hexdigest()[:40] + '"', last_modified=last_modified)


def channel_png(size: int = 1400) -> bytes:
    """A plain square channel image (podcast apps want 1400–3000 px), made in code: no binary in the tree."""
    row = b"\x00" + bytes((0x8B, 0x1A, 0x1A)) * size
    raw = zlib.compress(row * size, 9)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
