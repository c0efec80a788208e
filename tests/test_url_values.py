"""Dates and ids in a URL are validated once (pipeline/web/params.py): far or malformed values
answer 404 (pages) or 422 (API) in Vietnamese, never 500, and the connection lives on.

Against a real uvicorn on 127.0.0.1, every request of a test over ONE kept-alive httpx
connection: before the fix, ``/deliveries?date=9999-12-31`` answered 500 (``OverflowError``)
and uvicorn closed the connection under the next request.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.web_support import Web, login, serve_project, small_project, standard_users

FAR = ["9999-12-31", "0001-01-01", "1999-12-31", "2200-01-01", "2026-02-30", "20261201", "x"]


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path) -> Iterator[Web]:
    project = small_project(tmp_path_factory.mktemp("urls") / "p", voices_with_placeholders)
    db = project.db()
    standard_users(db)
    db.close()
    with serve_project(project) as web:
        yield web


def one_connection(web: Web, user: str | None = "duyet") -> httpx.Client:
    """A client that can only ever hold one connection: a reset shows as an error on the next request."""
    client = httpx.Client(base_url=web.url, timeout=120, limits=httpx.Limits(max_connections=1))
    web.clients.append(client)
    if user is not None:
        assert login(client, user).status_code == 303
    return client


def _same_connection_still_answers(client: httpx.Client) -> None:
    r = client.get("/archive")
    assert r.status_code == 200, r.status_code
    assert r.extensions["http_version"] == b"HTTP/1.1"


@pytest.mark.parametrize(
    "path",
    [
        "/deliveries?date={v}",
        "/reports?from={v}&to=2026-12-01",
        "/reports?from=2026-12-01&to={v}",
        "/reports/export.csv?from={v}&to=2026-12-01",
        "/reports/export.json?from=2026-01-01&to={v}",
        "/operator-reports?date={v}",
        "/preview?date={v}",
        "/calendar/02641?week={v}",
        "/bulletins?date_from={v}",
        "/archive?date={v}",
        "/archive/communes/02641/{v}",
        "/communes/02641/programs/{v}.zip",
    ],
)
def test_a_far_or_malformed_date_is_a_vietnamese_404_and_the_connection_lives(web: Web, path: str) -> None:
    client = one_connection(web, "quantri")
    for value in FAR:
        r = client.get(path.format(v=value))
        assert r.status_code == 404, (path, value, r.status_code)
        assert "Thông tin gửi lên không hợp lệ" in r.text and ("ngày" in r.text or "tuần" in r.text), r.text
        _same_connection_still_answers(client)


def test_the_far_dates_of_the_issue_over_one_connection(web: Web) -> None:
    client = one_connection(web)
    for path in (
        "/deliveries?date=9999-12-31",
        "/deliveries?date=0001-01-01",
        "/reports?from=0001-01-01&to=9999-12-31",
        "/reports/export.csv?from=0001-01-01&to=9999-12-31",
    ):
        r = client.get(path)
        assert r.status_code == 404 and "không hợp lệ" in r.text, (path, r.status_code)
        _same_connection_still_answers(client)
    # a valid day still works, and the edge of the window is a day like any other
    assert client.get("/deliveries?date=2199-12-31").status_code == 200
    assert client.get("/deliveries?date=2000-01-01").status_code == 200
    assert client.get("/reports?from=2026-01-01&to=2026-12-31").status_code == 200


def test_a_report_longer_than_a_year_is_refused_naming_the_field(web: Web) -> None:
    client = one_connection(web)
    r = client.get("/reports/export.csv?from=2020-01-01&to=2026-12-31")
    assert r.status_code == 404 and "đến ngày" in r.text
    _same_connection_still_answers(client)


def test_the_api_answers_422_in_vietnamese_json(web: Web) -> None:
    client = one_connection(web, None)
    for value in FAR:
        r = client.get("/api/v1/public/aired", params={"date": value})
        assert r.status_code == 422, (value, r.status_code)
        assert r.json()["detail"].startswith("Thông tin gửi lên không hợp lệ (ngày)")
    r = client.get("/api/v1/public/bulletins/99999999999999999999999")
    assert r.status_code == 422 and "số bản tin" in r.json()["detail"]
    r = client.get("/api/v1/public/bulletins/0")
    assert r.status_code == 422 and "số bản tin" in r.json()["detail"]
    _same_connection_still_answers(client)


def test_huge_ids_in_any_path_are_refused_before_the_route(web: Web) -> None:
    client = one_connection(web, "quantri")
    for path in ("/bulletins/{v}", "/archive/bulletins/{v}", "/consultations/{v}"):
        for value in ("99999999999999999999999", "0", "-1", "1e9"):
            r = client.get(path.format(v=value))
            assert r.status_code == 404 and "Thông tin gửi lên không hợp lệ" in r.text, (path, value)
    r = client.post("/admin/users/99999999999999999999999/disable")
    assert r.status_code == 422
    _same_connection_still_answers(client)


def test_an_unexpected_failure_answers_500_and_keeps_the_connection(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.lifecycle import reads as bulletins

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    client = one_connection(web)
    monkeypatch.setattr(bulletins, "list_bulletins", boom)
    r = client.get("/bulletins")
    assert r.status_code == 500 and "Máy chủ gặp lỗi" in r.text and "disk on fire" not in r.text
    monkeypatch.undo()
    _same_connection_still_answers(client)
