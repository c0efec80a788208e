"""The hostile corpus through every door (issue 30), property-based with a fixed seed.

Titles and bodies made of control and bidi characters, combining marks, NFD Vietnamese,
emoji, 10,000 characters, markup, TOML and Markdown injection are submitted by the command
line (``loa bulletin add``), the web form and the agency API (JSON). Each is either refused,
naming the field (in Vietnamese on the web and the API), or stored. What is stored is then
published as an aired bulletin carries it: the archive, every feed (feedparser without bozo,
and an XML parser), the public API and the embed page answer without a 500, and the pages fit
a 375 px phone in Chromium. A few hostile but acceptable bulletins also go through a real
build first, so the speech side and the publication of a real airing see them too.

CI runs ``HOSTILE_CORPUS_EXAMPLES`` (default 15) examples, derandomized; ``make bench-public``
runs 200.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

import feedparser
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser

from pipeline.cli import main as cli_main
from pipeline.store import bulletins as bulletin_store
from pipeline.store.db import utcnow
from tests.publish_support import (
    build,
    bulletin_file,
    local_today,
    make_agency,
    publish_project,
    store_bulletin,
)
from tests.web_support import Web, logged_in_csrf, serve_project, shared_segments, standard_users

pytestmark = [pytest.mark.audio, pytest.mark.slow]
EXAMPLES = int(os.environ.get("HOSTILE_CORPUS_EXAMPLES", "15"))
FIELDS = ("title", "body")
FEEDS = ("/feeds/province.xml", "/feeds/02641.xml", "/feeds/02641/vi.xml", "/feeds/02695.xml")

FRAGMENTS = [
    "Tiêm vắc-xin",
    "\x0b",
    "\x1b[31m",
    "\x00",
    "\x7f",
    "\u202e",
    "\u2066",
    "\u200f",
    "\ufeff",
    "\ufffe",
    "e\u0301\u0302\u0323",  # stacked combining marks
    "Tie\u0302\u0300m phòng",  # NFD
    "\u0300",  # a combining mark with nothing to sit on
    "\U0001f30a\U0001f3e0",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "<script>alert(1)</script>",
    "<b>đậm</b> &amp; &lt;",
    "]]>",
    '"\n+++\ntitle = "giả"\n',
    "''' \"\"\" [x] {y} = \\",
    "# Tiêu đề\n[bấm](javascript:alert(1))",
    "**đậm** _nghiêng_ `mã`",
    "\r\n",
    "\t",
    "Thôngbáokhẩncấp" * 8,
]
TEXT = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)),
    min_size=1,
    max_size=6,
).map("".join)
BODIES = st.one_of(TEXT, st.just("Nội dung dài. " * 715), st.just("x" * 10_000))


@dataclass
class Corpus:
    web: Web
    yesterday: dt.date
    carrier: int  # aired: carries each stored example's text onto every public surface
    token: str
    built: list[int]  # hostile but accepted bulletins that went through a real build
    stored: list[tuple[str, int]] = field(default_factory=list)  # (door, bulletin id)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (door, field)


REAL_BUILD = [
    ("Tie\u0302\u0300m phòng dại (NFD)", "Bà con đưa chó mèo đi tiêm. <b>Miễn phí</b> & đúng hẹn."),
    ("Lũ quét \U0001f30a cảnh báo", "# Không qua ngầm\n**Tuyệt đối** không qua ngầm tràn. [Xem](javascript:x)"),
    ("Họp thôn ]]> &amp; <i>x</i>", '+++\ntitle = "giả"\n+++\nHọp thôn lúc 7 giờ.'),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path) -> Iterator[Corpus]:
    root = tmp_path_factory.mktemp("corpus")
    project = publish_project(root / "p", voices_with_placeholders, segments=shared_segments(tmp_path_factory))
    with project.config.open("a", encoding="utf-8") as f:
        f.write('[publish]\nbase_url = ""\n')
    settings_, deployment = project.settings, project.deployment
    yesterday = local_today(settings_) - dt.timedelta(days=1)
    end = yesterday + dt.timedelta(days=8)
    db = project.db()
    standard_users(db)
    token = make_agency(db, "so-yte", ("all",), "Sở Y tế Lào Cai")
    carrier = store_bulletin(db, deployment, bulletin_file(source="Nguồn mang", start=yesterday, end=end))
    built: list[int] = []
    for title, body in REAL_BUILD:  # through the command line, as an editor's file would come
        code, out, _ = _cli(project.config, _markdown(title, body, yesterday, end, source="UBND xã (CLI)"), "--json")
        if code == 0:
            bid = int(json.loads(out)[0]["id"])
            bulletin_store.approve(db, bid, by="test")
            built.append(bid)
    build(project, db, yesterday)
    db.close()
    with serve_project(project) as web:
        yield Corpus(web, yesterday, carrier, token, built)


def _markdown(title: str, body: str, start: dt.date, end: dt.date, *, source: str) -> str:
    head = [
        "+++",
        f"title = {json.dumps(title, ensure_ascii=False)}",  # a TOML basic string: escapes as JSON does
        'category = "notice"',
        'priority = "routine"',
        f"source = {json.dumps(source, ensure_ascii=False)}",
        f"valid_from = {start.isoformat()}",
        f"valid_until = {end.isoformat()}",
        'targets = ["all"]',
        'languages = ["vi"]',
        "+++",
    ]
    return "\n".join(head) + "\n" + body + "\n"


def _cli(config: Path, text: str, *extra: str) -> tuple[int, str, str]:
    path = config.parent / "hostile.md"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["--config", str(config), "bulletin", "add", str(path), *extra])
    return code, out.getvalue(), err.getvalue()


def _named_in_english(err: str) -> str | None:
    m = re.search(r"(?:line \d+: )?([a-z_]+): ", err.removeprefix("error: "))
    found = [f for f in FIELDS if re.search(rf"\b{f}: ", err)]
    return found[0] if found else (m.group(1) if m else None)


def _submit_everywhere(c: Corpus, title: str, body: str) -> None:
    web, start, end = c.web, c.yesterday, c.yesterday + dt.timedelta(days=8)
    # 1. the command line: exit 0 (stored) or 2 naming the field
    code, out, err = _cli(web.project.config, _markdown(title, body, start, end, source="UBND xã (CLI)"), "--json")
    assert code in (0, 2), (code, err)
    if code == 0:
        c.stored.append(("cli", int(json.loads(out)[0]["id"])))
    else:
        named = _named_in_english(err)
        assert named in FIELDS, err
        c.refused.append(("cli", named))
    # 2. the web form: 303 (stored) or 400 with the error beside the field, in Vietnamese
    editor = web.client("bientap")
    form = {
        "title": title,
        "category": "notice",
        "priority": "normal",
        "source": "Trạm Y tế xã Y Tý (web)",
        "reference": "",
        "valid_from": start.isoformat(),
        "valid_until": end.isoformat(),
        "targets": "02641",
        "languages": "vi",
        "body": body,
    }
    r = editor.post("/bulletins/new", data=form | {"csrf_token": logged_in_csrf(editor, "/bulletins/new")})
    assert r.status_code in (303, 400), (r.status_code, r.text[:500])
    if r.status_code == 303:
        c.stored.append(("web", int(r.headers["location"].rsplit("/", 1)[1])))
    else:
        named_web = [f for f in FIELDS if f'id="err-{f}"' in r.text]
        assert named_web, r.text[-2000:]
        c.refused.append(("web", named_web[0]))
    # 3. the agency API, JSON: 201 or 422 naming the field in Vietnamese
    doc = {
        "title": title,
        "category": "notice",
        "priority": "routine",
        "source": "Sở Y tế Lào Cai (API)",
        "valid_from": start.isoformat(),
        "valid_until": end.isoformat(),
        "targets": ["all"],
        "body": body,
    }
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
    r = web.client().post(
        "/api/v1/bulletins",
        content=raw,
        headers={"authorization": f"Bearer {c.token}", "content-type": "application/json"},
    )
    assert r.status_code in (201, 409, 422), (r.status_code, r.text[:500])
    if r.status_code == 201:
        c.stored.append(("api", int(r.json()["id"])))
    else:
        answer = r.json()
        assert not answer["detail"].isascii(), answer
        if r.status_code == 422:
            assert answer.get("field") in FIELDS, answer
            c.refused.append(("api", answer["field"]))


def _publish_through_the_carrier(c: Corpus, title: str, body: str) -> None:
    """The carrier aired: give it this text (as stored) and bump the public version, as an edit does."""
    t = c.web.db.table("bulletins")
    with c.web.db.begin() as conn:
        conn.execute(t.update().where(t.c.id == c.carrier).values(title=title, body=body, updated_at=utcnow()))


def _check_surfaces(c: Corpus, browser: Browser | None) -> None:
    client = c.web.client()
    day = c.yesterday.isoformat()
    for path in (
        "/archive",
        f"/archive/bulletins/{c.carrier}",
        f"/archive/embed/{c.carrier}",
        f"/archive/communes/02641/{day}",
        "/archive/communes/02641",
        "/api/v1/public/aired",
        f"/api/v1/public/bulletins/{c.carrier}",
        f"/archive/text/{c.carrier}/vi.txt",
    ):
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code)
    for path in FEEDS:
        r = client.get(path)
        assert r.status_code == 200, (path, r.status_code)
        ET.fromstring(r.content)
        parsed = feedparser.parse(r.content)
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
    if browser is not None:
        context = browser.new_context(base_url=c.web.url, viewport={"width": 375, "height": 667})
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            for path in ("/archive", f"/archive/bulletins/{c.carrier}", f"/archive/embed/{c.carrier}"):
                page.goto(path)
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 375, (path, width)
        finally:
            context.close()


def test_hostile_bulletins_that_were_built_are_published_well_formed(corpus: Corpus, browser: Browser) -> None:
    client = corpus.web.client()
    assert corpus.built, "the command line refused every hostile sample meant for the build"
    listed = client.get("/api/v1/public/aired").json()
    assert {i["bulletin"]["id"] for i in listed} & set(corpus.built), "none of the hostile bulletins aired"
    for bid in corpus.built:
        page = client.get(f"/archive/bulletins/{bid}")
        assert page.status_code in (200, 404), page.status_code  # 404: deferred by the slot's length
    _check_surfaces(corpus, browser)


@seed(30)
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(title=TEXT, body=BODIES)
def test_every_door_refuses_naming_the_field_or_stores_and_every_surface_holds(
    corpus: Corpus, browser: Browser, title: str, body: str
) -> None:
    before = len(corpus.stored)
    _submit_everywhere(corpus, title, body)
    for door, bid in corpus.stored[before:]:
        stored = bulletin_store.get_bulletin(corpus.web.db, bid)
        _publish_through_the_carrier(corpus, stored.title, stored.body)
        _check_surfaces(corpus, browser if door == "api" else None)


def test_the_corpus_saw_both_outcomes(corpus: Corpus) -> None:
    """Runs after the property: the corpus is hostile enough to be refused and mild enough to be stored."""
    doors = {d for d, _ in corpus.refused}
    assert corpus.refused and doors == {"cli", "web", "api"}, corpus.refused
    assert corpus.stored, "nothing of the corpus was stored"
    print(f"corpus: {len(corpus.stored)} stored, {len(corpus.refused)} refused {sorted(set(corpus.refused))}")
