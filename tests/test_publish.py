"""Publishing what aired: the public archive, the podcast feeds, the public JSON API.

One project is built once for the module: yesterday's programs of two communes with a
public bulletin (Vietnamese and a Mông recording), an internal one, one that a test later
withdraws, one that expired yesterday, and an emergency in force today.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import feedparser
import httpx
import pytest
from playwright.sync_api import Browser

from pipeline.dispatch import dispatch_bulletin
from pipeline.intake import prepare_recording
from pipeline.store import bulletins as bulletin_store
from pipeline.store.recordings import save_recording
from tests.audio_fixtures import sine
from tests.publish_support import build, bulletin_file, local_today, publish_project, store_bulletin
from tests.web_support import Web, serve_project, shared_segments, standard_users

pytestmark = [pytest.mark.audio, pytest.mark.slow]
PORTAL = "https://portal.laocai.example.vn"
HMN_TEXT = "Tsev kho mob tshuaj tiv thaiv mob qhua pias dawb."  # a reading's text as read (Mông)


@dataclass
class Aired:
    web: Web
    yesterday: dt.date
    public: int  # all communes, vi + hmn recording
    internal: int  # public = false, Y Tý
    withdrawn: int  # withdrawn by the last test
    expired: int  # valid until yesterday
    emergency: int  # dispatched today, Y Tý


@pytest.fixture(scope="module")
def aired(tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path) -> Iterator[Aired]:
    root = tmp_path_factory.mktemp("publish")
    project = publish_project(root / "p", voices_with_placeholders, segments=shared_segments(tmp_path_factory))
    with project.config.open("a", encoding="utf-8") as f:
        f.write(f'[publish]\ncors_origins = ["{PORTAL}"]\nbase_url = ""\n')
    (project.root / "endpoints").mkdir()
    settings, deployment = project.settings, project.deployment
    today = local_today(settings)
    yesterday = today - dt.timedelta(days=1)
    week = today + dt.timedelta(days=7)
    db = project.db()
    standard_users(db)
    public = store_bulletin(
        db,
        deployment,
        bulletin_file(start=yesterday, end=week, languages=["vi", "hmn"], targets=["all"]),
    )
    reading = prepare_recording(
        bulletin_store.get_bulletin(db, public), "hmn", sine(root / "hmn.wav", seconds=1.5), settings=settings
    )
    save_recording(db, dataclasses.replace(reading, transcript=HMN_TEXT))  # the reader typed the text as read
    internal = store_bulletin(
        db,
        deployment,
        bulletin_file(
            title="Họp nội bộ cán bộ thôn",
            source="UBND xã Y Tý",
            start=yesterday,
            end=week,
            targets=["02641"],
            public=False,
            body="Cán bộ thôn họp kín về nhân sự lúc 14 giờ.",
        ),
    )
    withdrawn = store_bulletin(
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
    expired = store_bulletin(
        db,
        deployment,
        bulletin_file(
            title="Tiêm phòng dại cho chó mèo",
            source="Trạm thú y",
            start=yesterday,
            end=yesterday,
            targets=["all"],
            body="Tiêm phòng dại miễn phí cho chó mèo tại nhà văn hóa thôn.",
        ),
    )
    build(project, db, yesterday)
    emergency = store_bulletin(
        db,
        deployment,
        bulletin_file(
            title="Cảnh báo lũ quét",
            source="Ban Chỉ huy phòng chống thiên tai",
            category="emergency",
            priority="emergency",
            start=today,
            end=today + dt.timedelta(days=2),
            targets=["02641"],
            body="Mưa lớn, nguy cơ lũ quét tại các thôn ven suối. Không qua ngầm tràn.",
        ),
    )
    dispatch_bulletin(emergency, settings=settings, deployment=deployment, db=db)
    db.close()
    with serve_project(project) as web:
        yield Aired(web, yesterday, public, internal, withdrawn, expired, emergency)


def test_archive_home_lists_what_aired_emergency_first_no_internal(aired: Aired) -> None:
    c = aired.web.client()
    page = c.get("/archive")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<script" not in html and len(page.content) < 60_000
    assert "Tiêm vắc-xin sởi cho trẻ dưới 5 tuổi" in html and "Lịch cắt điện thôn Tả Phìn" in html
    assert "Họp nội bộ" not in html and "họp kín" not in html
    assert html.index("Thông báo khẩn cấp đang có hiệu lực") < html.index("Cảnh báo lũ quét") < html.index("<h1>")
    assert "Tiêm phòng dại cho chó mèo" in html and "Đã hết hạn" in html
    assert "/archive/communes/02641" in html


def test_day_page_has_each_slot_with_audio_per_language_and_text(aired: Aired) -> None:
    c = aired.web.client()
    day = c.get(f"/archive/communes/02641/{aired.yesterday.isoformat()}")
    assert day.status_code == 200
    html = day.text
    assert 'id="morning"' in html and 'id="evening"' in html and "Buổi chiều (17:00)" in html
    assert "Trạm y tế xã tiêm vắc-xin sởi miễn phí" in html
    assert "Tiếng Mông" in html and HMN_TEXT in html and 'lang="hmn"' in html  # the reading's own text
    assert "giọng người đọc" in html and "giọng máy đọc" in html  # where each sound came from
    assert 'preload="none"' in html
    urls = sorted(set(_audio_urls(html)))
    assert urls and all(u.startswith(f"/archive/audio/{aired.public}/") or "/archive/audio/" in u for u in urls)
    text = c.get(f"/archive/text/{aired.public}/hmn.txt")
    assert text.status_code == 200 and text.text.endswith(HMN_TEXT + "\n") and "bản đọc tiếng mông" in text.text
    assert "Trạm y tế xã" not in text.text and text.headers["content-language"] == "hmn"
    vi = c.get(f"/archive/text/{aired.public}/vi.txt")
    assert "Trạm y tế xã tiêm vắc-xin sởi miễn phí" in vi.text and vi.headers["content-language"] == "vi"


def _audio_urls(html: str) -> list[str]:
    import re

    return re.findall(r'<audio controls preload="none" src="([^"]+)"', html)


def test_audio_is_the_mastered_mp3_with_range(aired: Aired) -> None:
    from pipeline.publish.aired import aired_items
    from pipeline.publish.audio import published_mp3

    settings = aired.web.project.settings
    items = [
        i
        for i in aired_items(settings, communes=["02641"], day=aired.yesterday, bulletin_id=aired.public)
        if i.slot == "evening"
    ]
    assert {i.language for i in items} == {"vi", "hmn"}
    hmn = next(i for i in items if i.language == "hmn")
    assert [p.kind for p in hmn.parts] == ["recording"]
    c = aired.web.client()
    r = c.get(f"/archive/audio/{aired.public}/{hmn.key}.mp3")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
    # the recording's mastered segment, exactly as it aired
    assert hashlib.sha256(r.content).hexdigest() == hmn.parts[0].sha256
    vi = next(i for i in items if i.language == "vi")
    full = c.get(f"/archive/audio/{aired.public}/{vi.key}.mp3")
    assert hashlib.sha256(full.content).hexdigest() == _sha(published_mp3(vi, settings=settings))
    part = c.get(f"/archive/audio/{aired.public}/{vi.key}.mp3", headers={"range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == full.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(full.content)}"
    assert c.get(f"/archive/audio/{aired.internal}/{vi.key}.mp3").status_code == 404
    assert c.get(f"/archive/audio/{aired.public}/{'0' * 64}.mp3").status_code == 404


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_internal_bulletin_never_shows(aired: Aired) -> None:
    c = aired.web.client()
    r = c.get(f"/archive/bulletins/{aired.internal}")
    assert r.status_code == 404 and "Không tìm thấy bản tin này" in r.text and 'lang="vi"' in r.text
    assert c.get(f"/archive/text/{aired.internal}/vi.txt").status_code == 404
    for path in ("/feeds/province.xml", "/feeds/02641.xml", "/feeds/02641/vi.xml", "/api/v1/public/aired"):
        assert "Họp nội bộ" not in c.get(path).text, path
    assert c.get(f"/api/v1/public/bulletins/{aired.internal}").status_code == 404


def test_search_by_commune_topic_and_date(aired: Aired) -> None:
    c = aired.web.client()
    found = c.get("/archive", params={"q": "cat dien"}).text  # without diacritics
    assert "Lịch cắt điện thôn Tả Phìn" in found and "Tiêm vắc-xin" not in found
    other = c.get("/archive", params={"commune": "02695", "q": "điện"}).text
    assert "Lịch cắt điện" not in other and "Không có bản tin nào khớp" in other
    on_day = c.get("/archive", params={"commune": "02695", "date": aired.yesterday.isoformat()}).text
    assert "Tiêm vắc-xin sởi" in on_day and "Xã Bản Lầu" in on_day
    before = (aired.yesterday - dt.timedelta(days=3)).isoformat()
    assert "Không có bản tin nào" in c.get("/archive", params={"date": before}).text


def _feed(c: httpx.Client, path: str) -> feedparser.FeedParserDict:
    r = c.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/rss+xml")
    parsed = feedparser.parse(r.content)
    assert not parsed.bozo, (path, parsed.get("bozo_exception"))
    return parsed


FEEDS = ("/feeds/province.xml", "/feeds/02641.xml", "/feeds/02641/hmn.xml", "/feeds/02695/vi.xml")


def test_feeds_parse_and_enclosures_are_the_bytes_served(aired: Aired) -> None:
    c = aired.web.client()
    for path in FEEDS:
        feed = _feed(c, path)
        assert feed.feed.language and feed.feed.image.href.endswith("/feeds/image.png"), path
        assert feed.feed.itunes_explicit is False or feed.feed.get("itunes_explicit") in (False, "false", None)
        assert feed.entries, path
        guids = [e.id for e in feed.entries]
        assert len(guids) == len(set(guids)), path
        for e in feed.entries:
            [enc] = e.enclosures
            assert enc.type == "audio/mpeg"
            served = c.get(enc.href)
            assert served.status_code == 200 and len(served.content) == int(enc.length), (path, enc.href)
            assert e.published_parsed and e.description
            assert e.podcast_transcript["type"] == "text/plain" if "podcast_transcript" in e else True
        raw = c.get(path).text
        assert raw.count("<podcast:transcript ") == len(feed.entries)
        assert "<itunes:image " in raw and "<itunes:duration>" in raw and '<itunes:category text="Government"' in raw
    hmn = _feed(c, "/feeds/02641/hmn.xml")
    assert {e.title.split(" (")[1].split(",")[0] for e in hmn.entries} == {"Tiếng Mông"}
    # a reading with its typed text: that text, in its language, is the transcript and description
    raw_hmn = c.get("/feeds/02641/hmn.xml").text
    typed = [e for e in hmn.entries if HMN_TEXT in e.description]
    assert typed and raw_hmn.count('type="text/plain" language="hmn"') == len(typed)
    assert 'language="hmn"' not in c.get("/feeds/02641/vi.xml").text
    province = _feed(c, "/feeds/province.xml")
    titles = [e.title for e in province.entries]
    assert sum("Tiêm vắc-xin sởi" in t for t in titles) == 2  # vi and hmn once, not once per commune
    png = c.get("/feeds/image.png")
    assert png.content.startswith(b"\x89PNG") and png.headers["content-type"] == "image/png"
    assert c.get("/feeds/99999.xml").status_code == 404
    assert c.get("/feeds/02695/hmn.xml").status_code == 404


def test_guids_unchanged_after_a_rebuild(aired: Aired) -> None:
    c = aired.web.client()
    before = {p: [e.id for e in _feed(c, p).entries] for p in FEEDS}
    build(aired.web.project, aired.web.db, aired.yesterday)
    after = {p: [e.id for e in _feed(c, p).entries] for p in FEEDS}
    assert before == after


def test_conditional_get(aired: Aired) -> None:
    c = aired.web.client()
    r = c.get("/feeds/02641.xml")
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    assert c.get("/feeds/02641.xml", headers={"if-none-match": etag}).status_code == 304
    assert c.get("/feeds/02641.xml", headers={"if-modified-since": modified}).status_code == 304
    assert c.get("/feeds/02641.xml", headers={"if-none-match": '"other"'}).status_code == 200
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert c.get("/feeds/02641.xml", headers={"if-modified-since": old}).status_code == 200


def test_public_api_and_cors_only_for_configured_origins(aired: Aired) -> None:
    c = aired.web.client()
    r = c.get(
        "/api/v1/public/aired",
        params={"commune": "02641", "date": aired.yesterday.isoformat()},
        headers={"origin": PORTAL},
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == PORTAL
    items = r.json()
    assert {i["bulletin"]["id"] for i in items} == {aired.public, aired.withdrawn, aired.expired}
    assert {i["slot"] for i in items} == {"morning", "evening"}
    first = next(i for i in items if i["bulletin"]["id"] == aired.public)
    assert {(a["language"], a["human"]) for a in first["audio"]} == {("vi", False), ("hmn", True)}
    assert "Trạm y tế xã" in first["bulletin"]["text"]
    assert next(i for i in items if i["bulletin"]["id"] == aired.expired)["bulletin"]["expired"] is True
    other = c.get("/api/v1/public/aired", headers={"origin": "https://evil.example"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
    pre = c.options(
        "/api/v1/public/aired", headers={"origin": "https://evil.example", "access-control-request-method": "GET"}
    )
    assert "access-control-allow-origin" not in pre.headers
    assert "access-control-allow-origin" not in c.get("/bulletins", headers={"origin": PORTAL}).headers
    em = c.get("/api/v1/public/emergencies").json()
    assert [e["bulletin"]["id"] for e in em] == [aired.emergency]
    spec = c.get("/api/openapi.json").json()
    assert "/api/v1/public/aired" in spec["paths"] and "/feeds/province.xml" in spec["paths"]


def test_embed_snippet_may_be_framed_by_the_portal_only(aired: Aired) -> None:
    c = aired.web.client()
    r = c.get(f"/archive/embed/{aired.public}")
    assert r.status_code == 200 and "<audio" in r.text and "Trạm y tế xã" in r.text
    assert "x-frame-options" not in r.headers and "x-loa-frame-ancestors" not in r.headers
    assert f"frame-ancestors {PORTAL}" in r.headers["content-security-policy"]
    page = c.get("/archive")
    assert page.headers["x-frame-options"] == "DENY"


def test_a_citizen_on_a_phone_without_javascript_finds_yesterdays_evening_program(
    aired: Aired, browser: Browser
) -> None:
    context = browser.new_context(
        base_url=aired.web.url,
        java_script_enabled=False,
        viewport={"width": 360, "height": 640},
        is_mobile=True,
        has_touch=True,
        locale="vi-VN",
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto("/archive")
    assert "Họp nội bộ" not in page.content()
    # the citizen picks the commune and the date in the search form (a plain GET form)
    page.select_option("#commune", "02641")
    page.fill("#date", aired.yesterday.isoformat())
    page.click("form.search button[type=submit]")
    page.wait_for_load_state()
    assert "commune=02641" in page.url
    assert "Tiêm vắc-xin sởi cho trẻ dưới 5 tuổi" in page.content()
    # then the commune's page, yesterday, the evening slot
    page.click("nav.communes >> text=Y Tý")
    page.wait_for_load_state()
    page.click(f"a[href='/archive/communes/02641/{aired.yesterday.isoformat()}#evening']")
    page.wait_for_load_state()
    evening = page.locator("section#evening")
    assert "Buổi chiều (17:00)" in evening.inner_text()
    entry = evening.locator(f"article#b{aired.public}-evening")
    text = entry.inner_text()
    assert "Trạm y tế xã tiêm vắc-xin sởi miễn phí" in text  # the text, readable without a click
    assert "Họp nội bộ" not in page.content()
    # plays the Vietnamese audio: the browser fetches the MP3 when the play control is pressed
    player = entry.locator("audio").first
    src = player.get_attribute("src")
    assert src and src.startswith(f"/archive/audio/{aired.public}/")
    with page.expect_response(lambda r: r.url.endswith(src)) as got:
        box = player.bounding_box()
        assert box is not None and box["width"] <= 360
        page.mouse.click(box["x"] + 16, box["y"] + box["height"] / 2)
    response = got.value
    assert response.status in (200, 206) and response.headers["content-type"] == "audio/mpeg"
    page.screenshot(path=str(aired.web.project.root / "phone.png"), full_page=True)
    context.close()


def test_withdrawn_leaves_the_archive_feeds_and_api_at_once(aired: Aired) -> None:
    c = aired.web.client()
    before_url = next(u for u in _audio_urls(c.get(f"/archive/bulletins/{aired.withdrawn}").text))
    assert c.get(before_url).status_code == 200
    bulletin_store.withdraw(aired.web.db, aired.withdrawn)
    page = c.get(f"/archive/bulletins/{aired.withdrawn}")
    assert page.status_code == 404 and "đã bị thu hồi" in page.text
    assert c.get(before_url).status_code == 404
    for path in ("/archive", f"/archive/communes/02641/{aired.yesterday.isoformat()}", *FEEDS):
        assert "Lịch cắt điện" not in c.get(path).text, path
    assert aired.withdrawn not in {i["bulletin"]["id"] for i in c.get("/api/v1/public/aired").json()}
    nf = c.get("/archive/communes/khong-co")
    assert nf.status_code == 404 and "Không tìm thấy xã này." in nf.text
