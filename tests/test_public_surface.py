"""The public side under hostile stored text and under repetition (issue 30).

One small project is built once for the module (yesterday's programs of two communes with
one public bulletin). Then:

- whatever the store holds (text written to it directly, bypassing intake), every feed
  and a CAP export are well-formed XML 1.0 (feedparser without bozo, and an XML parser);
- public audio and pages revalidate: a short max-age, ETag and Last-Modified, no day-long
  caching of archive audio, so a withdrawal reaches caches within ``max_age_s``;
- a conditional request is answered 304 without building anything, and an answer is
  built once per change of what is public, not once per request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import feedparser
import httpx
import pytest

from pipeline.broadcast.cap import alert_xml
from pipeline.publish import catalog
from pipeline.store import bulletins as bulletin_store
from pipeline.store.db import utcnow
from pipeline.xmlsafe import xml_text
from tests.publish_support import build, bulletin_file, local_today, publish_project, store_bulletin
from tests.web_support import Web, serve_project, shared_segments

pytestmark = [pytest.mark.audio, pytest.mark.slow]
FEEDS = ("/feeds/province.xml", "/feeds/02641.xml", "/feeds/02641/vi.xml", "/feeds/02695.xml")
#: Characters XML 1.0 does not allow (C0 controls but tab/LF/CR, U+FFFE, U+FFFF), and what must be escaped.
FORBIDDEN = "\x00\x01\x08\x0b\x0c\x1b\x1f\ufffe\uffff"
HOSTILE_TITLE = "Lũ\x0b quét \x1b[31m <b>&amp;</b> ]]> \u202eđảo\u202c \ufffe “x” & 'y' \U0001f30a"
HOSTILE_BODY = "Dòng một\x0c\x00\x01\x08\x1f\nDòng hai <script>alert(1)</script> &lt; \uffff\r\n\tkết thúc"


@dataclass
class Built:
    web: Web
    yesterday: dt.date
    public: int
    other: int


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("surface")
    project = publish_project(root / "p", voices_with_placeholders, segments=shared_segments(tmp_path_factory))
    with project.config.open("a", encoding="utf-8") as f:
        f.write('[publish]\nbase_url = ""\n')
    settings, deployment = project.settings, project.deployment
    yesterday = local_today(settings) - dt.timedelta(days=1)
    week = yesterday + dt.timedelta(days=8)
    db = project.db()
    public = store_bulletin(db, deployment, bulletin_file(start=yesterday, end=week))
    other = store_bulletin(
        db,
        deployment,
        bulletin_file(
            title="Lịch cắt điện thôn Tả Phìn",
            source="Điện lực Bát Xát",
            start=yesterday,
            end=week,
            targets=["02641"],
            body="Thôn Tả Phìn mất điện từ 8 giờ đến 11 giờ để sửa đường dây.",
        ),
    )
    build(project, db, yesterday)
    db.close()
    with serve_project(project) as web:
        yield Built(web, yesterday, public, other)


def _write_directly(web: Web, bulletin_id: int, **values: Any) -> None:
    """Text into the store as a bug, an old version or an operator's SQL might leave it."""
    t = web.db.table("bulletins")
    with web.db.begin() as conn:
        conn.execute(t.update().where(t.c.id == bulletin_id).values(**values, updated_at=utcnow()))


def _well_formed_feed(body: bytes, where: str) -> feedparser.FeedParserDict:
    ET.fromstring(body)  # raises on anything that is not well-formed XML 1.0
    parsed = feedparser.parse(body)
    assert not parsed.bozo, (where, parsed.get("bozo_exception"))
    return parsed


def test_xml_text_drops_what_xml_1_0_does_not_allow() -> None:
    assert xml_text("a\x0bb\x1bc\ufffed\uffffe\x00f\ud800g") == "abcdefg"
    kept = "tab\tLF\nCR\r é đ \u202e \U0001f30a \ue000 \ufffd"
    assert xml_text(kept) == kept


def test_every_feed_is_well_formed_whatever_the_store_holds(built: Built) -> None:
    _write_directly(built.web, built.public, title=HOSTILE_TITLE, body=HOSTILE_BODY, source="Sở\x1b Y tế & <Lào Cai>")
    c = built.web.client()
    for path in FEEDS:
        r = c.get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert not any(ch in r.text for ch in FORBIDDEN), path
        feed = _well_formed_feed(r.content, path)
        titles = [e.title for e in feed.entries]
        assert any("Lũ quét" in t and "<b>&amp;</b>" in t and "\u202eđảo" in t for t in titles), (path, titles)
        descriptions = " ".join(e.description for e in feed.entries)
        assert "Dòng hai" in descriptions and "kết thúc" in descriptions
    # the other public surfaces answer too
    assert c.get("/archive").status_code == 200
    assert c.get(f"/archive/bulletins/{built.public}").status_code == 200
    api = c.get("/api/v1/public/aired")
    assert api.status_code == 200 and any(i["bulletin"]["title"] == HOSTILE_TITLE for i in api.json())


def test_a_cap_export_is_well_formed_whatever_the_bulletin_holds(built: Built) -> None:
    project = built.web.project
    b = bulletin_store.get_bulletin(built.web.db, built.other)
    hostile = dataclasses.replace(
        b, priority="emergency", category="emergency", title=HOSTILE_TITLE, body=HOSTILE_BODY + "\ud800"
    )
    xml = alert_xml(hostile, deployment=project.deployment, sender="loa@laocai.gov.vn", tz=project.settings.tz)
    root = ET.fromstring(xml)
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    headline = root.findtext("cap:info/cap:headline", namespaces=ns)
    assert headline == xml_text(HOSTILE_TITLE)
    assert not any(ch in xml.decode() for ch in FORBIDDEN)


def _cache_control(r: httpx.Response) -> dict[str, str]:
    out = {}
    for part in r.headers["cache-control"].split(","):
        name, _, value = part.strip().partition("=")
        out[name] = value
    return out


def _audio_urls(html: str) -> list[str]:
    return re.findall(r'src="(/archive/audio/[^"]+\.mp3)"', html)


def test_public_pages_and_audio_revalidate_within_minutes(built: Built) -> None:
    c = built.web.client()
    [audio, *_] = _audio_urls(c.get(f"/archive/bulletins/{built.public}").text)
    paths = [audio, "/archive", f"/archive/bulletins/{built.public}", "/feeds/province.xml", "/api/v1/public/aired"]
    for path in paths:
        r = c.get(path)
        assert r.status_code == 200, path
        cc = _cache_control(r)
        assert "public" in cc and 0 < int(cc["max-age"]) <= 300, (path, r.headers["cache-control"])
        assert r.headers["etag"] and r.headers["last-modified"], path
        again = c.get(path, headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b"", path
        assert again.headers["etag"] == r.headers["etag"]
        since = c.get(path, headers={"if-modified-since": r.headers["last-modified"]})
        assert since.status_code == 304, path


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real: Callable[..., list[catalog.Entry]] = catalog.entries

    def counted(*args: Any, **kwargs: Any) -> list[catalog.Entry]:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(catalog, "entries", counted)
    return calls


def test_a_conditional_request_builds_nothing(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    c = built.web.client()
    paths = ["/feeds/province.xml", "/feeds/02641/vi.xml", "/archive", "/api/v1/public/emergencies"]
    tags = {p: c.get(p).headers["etag"] for p in paths}

    def nothing_may_be_built(*args: object, **kwargs: object) -> None:
        raise AssertionError("built for a conditional request")

    monkeypatch.setattr(catalog, "entries", nothing_may_be_built)
    for path, tag in tags.items():
        r = c.get(path, headers={"if-none-match": tag})
        assert r.status_code == 304, (path, r.status_code)


def test_an_answer_is_built_once_per_change_not_per_request(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    c = built.web.client()
    first = c.get("/feeds/02641.xml")
    calls = _counting(monkeypatch)
    for _ in range(10):
        r = c.get("/feeds/02641.xml")
        assert r.status_code == 200 and r.content == first.content
        assert c.get("/archive/communes/02641").status_code == 200
        assert c.get("/api/v1/public/aired", params={"commune": "02641"}).status_code == 200
    assert len(calls) <= 2, len(calls)  # the page and the API answer, once each
    # a change of what is public: the next request builds again and shows it
    bulletin_store.withdraw(built.web.db, built.other)
    after = c.get("/feeds/02641.xml")
    assert after.headers["etag"] != first.headers["etag"] and "Lịch cắt điện" not in after.text
    assert "Lịch cắt điện" in first.text
    assert c.get("/feeds/02641.xml", headers={"if-none-match": first.headers["etag"]}).status_code == 200


def test_a_withdrawal_reaches_a_revalidating_cache(built: Built) -> None:
    c = built.web.client()
    bulletin_store.approve(built.web.db, built.public, by="test")  # approved (again, if another test redrafted it)
    [audio, *_] = _audio_urls(c.get(f"/archive/bulletins/{built.public}").text)
    r = c.get(audio)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
    assert "86400" not in r.headers["cache-control"]
    assert c.get(audio, headers={"if-none-match": r.headers["etag"]}).status_code == 304
    bulletin_store.withdraw(built.web.db, built.public)
    # the cache's revalidation after max-age: the origin says it is gone, not "unchanged"
    assert c.get(audio, headers={"if-none-match": r.headers["etag"]}).status_code == 404
    assert c.get(f"/archive/bulletins/{built.public}").status_code == 404


def test_the_archive_fits_a_phone_with_long_unbroken_words(built: Built) -> None:
    from tests.browser_support import chromium, page_widths

    word = "Thôngbáokhẩncấp" * 20  # 300 letters, no space to break at
    _write_directly(built.web, built.other, title=f"Tin {word}", body=f"Nội dung {word} hết.", status="approved")
    day = built.yesterday.isoformat()
    paths = [
        "/archive",
        f"/archive/bulletins/{built.other}",
        f"/archive/embed/{built.other}",
        "/archive/communes/02641",
        f"/archive/communes/02641/{day}",
        f"/archive?q={word}",
    ]
    with chromium() as browser:
        widths = page_widths(browser, built.web, paths)
    assert all(w <= 375 for w in widths.values()), widths
