"""The agency API at its edges (issue 30): what its documentation promises, in JSON."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.store import bulletins as bulletin_store
from tests.publish_support import bulletin_file, make_agency, store_bulletin
from tests.web_support import Web, serve_project, small_project


@pytest.fixture(scope="module")
def agency(tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path) -> Iterator[tuple[Web, str]]:
    project = small_project(tmp_path_factory.mktemp("edges") / "p", voices_with_placeholders)
    db = project.db()
    token = make_agency(db, "so-yte", ("all",), "Sở Y tế Lào Cai")
    db.close()
    with serve_project(project) as web:
        yield web, token


def test_text_plain_is_415_in_vietnamese_json_and_nothing_is_stored(agency: tuple[Web, str]) -> None:
    web, token = agency
    today = dt.date.today()
    text = bulletin_file(start=today, end=today + dt.timedelta(days=3), title="Gửi nhầm kiểu")
    before = len(bulletin_store.list_bulletins(web.db))
    for ctype in ("text/plain", "text/plain; charset=utf-8", "application/octet-stream", ""):
        r = web.client().post(
            "/api/v1/bulletins",
            content=text.encode(),
            headers={"authorization": f"Bearer {token}", "content-type": ctype},
        )
        assert r.status_code == 415, (ctype, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/json")
        assert "text/markdown" in r.json()["detail"] and not r.json()["detail"].isascii()
    assert len(bulletin_store.list_bulletins(web.db)) == before
    ok = web.client().post(
        "/api/v1/bulletins",
        content=text.encode(),
        headers={"authorization": f"Bearer {token}", "content-type": "text/markdown; charset=utf-8"},
    )
    assert ok.status_code == 201, ok.text


def test_a_60_mb_chunked_recording_is_413_in_json(agency: tuple[Web, str]) -> None:
    web, token = agency
    today = dt.date.today()
    bid = store_bulletin(
        web.db,
        web.project.deployment,
        bulletin_file(start=today, end=today + dt.timedelta(days=3), title="Có bản ghi", languages=["vi", "hmn"]),
        approve=False,
    )
    from pipeline.store.agencies import set_owner

    set_owner(web.db, bid, "so-yte")
    chunk = b"\0" * (1024 * 1024)

    def sixty_megabytes() -> Iterator[bytes]:
        for _ in range(60):
            yield chunk

    r = web.client().put(
        f"/api/v1/bulletins/{bid}/recordings/hmn",
        content=sixty_megabytes(),  # no Content-Length: Transfer-Encoding chunked
        headers={"authorization": f"Bearer {token}", "content-type": "audio/wav"},
    )
    assert r.status_code == 413, r.text[:200]
    assert r.headers["content-type"].startswith("application/json"), r.headers["content-type"]
    assert r.json()["detail"].startswith("Tệp quá lớn")  # (a page's upload is answered in HTML: test_uploads)
