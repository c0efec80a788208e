"""Every GET route, as every role, in Vietnamese: no English sentence reaches a page.

Pages are fetched with content in the store (bulletins of each status and priority,
a recording, a refused upload, audit entries) and odd parameters; the visible text of
each HTML answer (tags, scripts and attribute values removed) must not read as English.
"""

from __future__ import annotations

import html
import re

import pytest
from fastapi.routing import APIRoute

from pipeline.store import audit
from pipeline.web.app import ROUTERS
from tests.web_support import Web, add_bulletin

#: Words of English that are not Vietnamese syllables; two in one text run make a sentence.
ENGLISH = {
    "the", "is", "are", "of", "and", "for", "not", "with", "this", "that", "was", "has", "have", "you",
    "your", "please", "error", "found", "method", "allowed", "field", "required", "invalid", "missing",
    "unknown", "file", "must", "should", "cannot", "failed", "internal", "server", "no", "such", "yet",
    "page", "login", "password", "user", "bulletin", "recording", "approve", "approved", "draft",
}  # fmt: skip
#: Proper nouns and codes that may appear in Vietnamese text.
ALLOWED = {"Loa", "WAV", "MP3", "M4A", "AAC", "OGG", "Opus", "FLAC", "WebM", "AMR", "3GP", "CSV", "UTC", "TTS"}
PHRASES = ("Not Found", "Internal Server Error", "Method Not Allowed", "Field required", "Traceback", "Unprocessable")
_TAG_RE = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S | re.I)


def english_in(page: str) -> list[str]:
    """The runs of visible text that read as English."""
    text = html.unescape(_TAG_RE.sub("\n", page))
    found = []
    for run in (r.strip() for r in text.split("\n")):
        if not run:
            continue
        words = {w.lower() for w in re.findall(r"[A-Za-z]+", run) if w not in ALLOWED}
        if len(words & ENGLISH) >= 2 or any(p in run for p in PHRASES):
            found.append(run)
    return found


def test_the_detector_finds_english_and_passes_vietnamese() -> None:
    assert english_in("<p>Not Found</p>")
    assert english_in("<p>bulletin 3: no such bulletin; see loa bulletin list</p>")
    assert english_in('<p class="x">the file is empty (0 bytes)</p>')
    assert not english_in("<p>Bản tin đã duyệt; tải lên WAV, MP3 hoặc FLAC.</p>")
    assert not english_in('<a href="/bulletins?status=draft" title="x">Nháp</a>')


VALUES = {
    "code": "02641",
    "name": "y-ty-loa",
    "path": "media/x.mp3",
    "path:path": "media/x.mp3",
    "date": "2026-12-01",
    "slot": "morning",
    "language": "hmn",
    "action": "dispatch",
    "token": "a" * 32,
    "user_id": "1",
    "token_id": "1",
    "consultation_id": "1",
    "answer_id": "1",
    "take_id": "1",
    "fmt": "csv",
    "day": "2026-12-01",
    "key": "a" * 64,
}
QUERIES = ["", "?status=draft&priority=emergency&date_from=0001-01-01&date_to=9999-12-31", "?%zz=%%&date=x"]


def _get_routes() -> list[str]:
    out = []
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            if "GET" in route.methods and not route.path.startswith("/api/"):
                out.append(route.path)
    return out


@pytest.mark.parametrize("role_user", ["quantri", "bientap", "duyet", "dai-yty", None])
def test_every_page_as_every_role_is_vietnamese(web: Web, role_user: str | None) -> None:
    s, d = web.project.settings, web.project.deployment
    draft = add_bulletin(web.db, d, s, title="Tin nháp", approve=False)
    add_bulletin(web.db, d, s, title="Tin khẩn", priority="emergency", targets='["all"]')
    audit.record(web.db, "bientap", "recording.refused", f"bulletin:{draft}", "playlist")
    client = web.client(role_user)
    checked = 0
    found: set[tuple[str, str]] = set()
    for template in _get_routes():
        for bulletin in (str(draft), "99999999999999999999999", "abc"):
            values = VALUES | {"bulletin_id": bulletin}
            path = re.sub(r"\{([^}]+)\}", lambda m, v=values: v[m[1]], template)
            for query in QUERIES:
                r = client.get(path + query, follow_redirects=True)
                # /readyz answers 503 while unready (no scheduler heartbeat here): that is its job
                assert r.status_code < 500 or path == "/readyz", (path + query, r.status_code)
                if r.headers.get("content-type", "").startswith("text/html"):
                    found.update((path, e) for e in english_in(r.text))
                    checked += 1
            if "{bulletin_id}" not in template:
                break
    assert checked >= len(_get_routes())
    assert not found, sorted(found)


def test_delivery_errors_and_missing_recordings_read_in_vietnamese() -> None:
    from pipeline.messages import DELIVERY_UNCODED, delivery_error_vi, gap_vi
    from pipeline.models import Gap

    fields = {"endpoint": "y-ty-loa", "user": "loa", "host": "10.0.0.5"}
    for code in ("delivery.no_space", "delivery.timeout", "delivery.auth_refused", "delivery.host_key_mismatch"):
        vi = delivery_error_vi(code, fields)
        assert vi.startswith("Lỗi: ") and "y-ty-loa" in vi and not english_in(f"<p>{vi}</p>"), vi
    assert delivery_error_vi("delivery.no_space", fields) == (
        "Lỗi: Điểm nhận y-ty-loa hết chỗ trống; hãy xóa bớt chương trình, tệp cũ rồi gửi lại."
    )
    # a code newer than the table gets its family's sentence; a record kept before codes, a general one
    assert delivery_error_vi("delivery.something_new", fields) == "Lỗi: Không gửi được tới thiết bị."
    assert delivery_error_vi(None, None) == DELIVERY_UNCODED
    assert gap_vi(Gap("recording", 3, "Họp thôn", "hmn")) == "bản tin #3 (Họp thôn): chưa có bản ghi Tiếng Mông"


def test_a_dispatch_result_names_each_failure_in_vietnamese_from_its_code() -> None:
    """The stored result of a dispatch: failures with a code, and one kept before codes (no "code" key)."""
    import datetime as dt
    from types import SimpleNamespace

    from pipeline.messages import DELIVERY_UNCODED
    from pipeline.web.pages import make_environment

    failed = [
        {
            "what": "y-ty-loa",
            "error": "y-ty-loa: timed out; will retry",
            "code": "delivery.timeout",
            "fields": {"endpoint": "y-ty-loa"},
        },
        {"what": "ban-lau-loa", "error": "ban-lau-loa: no space left on the device"},
    ]
    done = SimpleNamespace(
        created_at=dt.datetime(2026, 12, 7, 5, 0, tzinfo=dt.UTC),
        status="done",
        action="dispatch",
        result={"programs": 2, "deliveries": 2, "seconds": 1.0, "failed": failed},
    )
    b = SimpleNamespace(id=7, title="Lũ quét")
    template = make_environment().get_template("action_result.html")
    html = template.blocks["content"](template.new_context({"done": done, "b": b}))
    text = "".join(html)
    assert "Lỗi: Quá thời gian chờ điểm nhận y-ty-loa trả lời." in text
    assert DELIVERY_UNCODED in text
