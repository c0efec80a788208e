"""After a real build and push: the delivery dashboard, the operator page and the pull API."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from html import escape as html_escape
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from pipeline import manifest as mf
from pipeline.cli import web_cmds
from pipeline.cli.context import AppContext
from pipeline.messages import delivery_error_vi
from pipeline.package import manifest_path as manifest_path_for
from pipeline.store import audit
from pipeline.store.runs import latest_deliveries
from pipeline.store.tokens import add_token
from pipeline.store.users import play_reports
from tests.web_support import Built, Web, csrf_of, logged_in_csrf, serve_project

pytestmark = [pytest.mark.audio, pytest.mark.slow]


@pytest.fixture
def web(built: Built) -> Iterator[Web]:
    with serve_project(built.project) as web:
        yield web


# --- dashboard --------------------------------------------------------------------


def test_dashboard_shows_each_commune_and_slot_the_error_and_retries(built: Built, web: Web) -> None:
    approver = web.client("duyet")
    page = approver.get("/deliveries", params={"date": built.day.isoformat()})
    assert page.status_code == 200
    html = page.text
    assert "Y Tý" in html and "Bản Lầu" in html
    assert "Buổi sáng" in html
    [failed] = [d for d in latest_deliveries(web.db, built.day.isoformat()) if d.status == "failed"]
    assert failed.endpoint == "ban-lau-loa" and failed.error
    assert html_escape(failed.error) in html  # the technical text, in the tooltip
    assert failed.error_code and failed.error_code.startswith("delivery.")
    assert html_escape(delivery_error_vi(failed.error_code, failed.error_fields)) in html  # the page's Vietnamese
    assert "Gửi lại" in html
    assert "Đã nhận: 1" in html and "Lỗi: 1" in html
    # fix the endpoint, press retry
    (built.project.root / "endpoints" / "ban-lau-loa").unlink()
    r = approver.post(
        "/deliveries/retry",
        data={"csrf_token": csrf_of(html), "date": built.day.isoformat(), "endpoint": "ban-lau-loa"},
    )
    assert r.status_code == 303
    after = approver.get(r.headers["location"]).text
    assert "Đã nhận: 2" in after and "Lỗi: 0" in after
    assert (
        built.project.root / "endpoints" / "ban-lau-loa" / "programs" / built.day.isoformat() / "manifest.json"
    ).is_file()
    # an editor of Bát Xát sees only its communes and cannot retry
    editor = web.client("bientap")
    mine = editor.get("/deliveries", params={"date": built.day.isoformat()}).text
    assert "Y Tý" in mine and "Bản Lầu" not in mine and "Gửi lại" not in mine
    token = logged_in_csrf(editor, "/deliveries")
    denied = editor.post(
        "/deliveries/retry", data={"csrf_token": token, "date": built.day.isoformat(), "endpoint": "y-ty-loa"}
    )
    assert denied.status_code == 403


def test_a_group_approver_cannot_retry_another_groups_delivery(built: Built, web: Web) -> None:
    from tests.web_support import make_user

    make_user(web.db, "duyet-bat-xat", "approver", group="bat-xat")  # Bản Lầu is not Bát Xát's
    approver = web.client("duyet-bat-xat")
    page = approver.get("/deliveries", params={"date": built.day.isoformat()}).text
    assert "Y Tý" in page and "Bản Lầu" not in page
    before = [d for d in latest_deliveries(web.db, built.day.isoformat()) if d.endpoint == "ban-lau-loa"]
    token = logged_in_csrf(approver, "/deliveries")
    denied = approver.post(
        "/deliveries/retry", data={"csrf_token": token, "date": built.day.isoformat(), "endpoint": "ban-lau-loa"}
    )
    assert denied.status_code == 404
    after = [d for d in latest_deliveries(web.db, built.day.isoformat()) if d.endpoint == "ban-lau-loa"]
    assert after == before  # nothing was pushed
    mine = approver.post(
        "/deliveries/retry", data={"csrf_token": token, "date": built.day.isoformat(), "endpoint": "y-ty-loa"}
    )
    assert mine.status_code == 303  # the group's own endpoint: allowed


# --- operator page -----------------------------------------------------------------


def test_operator_sees_downloads_and_reports_the_programs_of_the_commune(
    built: Built, web: Web, tmp_path: Path
) -> None:
    op = web.client("dai-yty")
    assert op.get("/").headers["location"] == "/communes/02641"
    page = op.get("/communes/02641")
    assert page.status_code == 200
    html = page.text
    assert "Ngày mai" in html and "Hôm nay" in html and "Chưa có chương trình" in html  # only tomorrow is built
    assert "THÔNG BÁO KHẨN" in html and "Cảnh báo lũ quét" in html
    day = built.day.isoformat()
    mp3_url = f"/communes/02641/programs/{day}/morning.mp3"
    assert mp3_url in html
    mp3 = op.get(mp3_url)
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    assert "attachment" in mp3.headers["content-disposition"]
    (tmp_path / "p.mp3").write_bytes(mp3.content)
    duration = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(tmp_path / "p.mp3")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert float(duration) > 5
    zipped = op.get(f"/communes/02641/programs/{day}.zip")
    assert zipped.status_code == 200
    manifest_path = manifest_path_for(built.project.settings.outbox_dir, "02641", f"programs/{day}", "y-ty-loa")
    manifest = mf.read(manifest_path)
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as zf:
        assert zf.read(f"programs/{day}/manifest.json") == manifest_path.read_bytes()  # the signed bytes
        assert zf.read(f"programs/{day}/manifest.json.sig") == manifest_path.with_suffix(".json.sig").read_bytes()
        for entry in manifest.files:
            assert hashlib.sha256(zf.read(entry.path)).hexdigest() == entry.sha256
    # played / problem: tomorrow's slots have not started, so no buttons and no report
    # (tests/test_operator_reports.py reports a started program)
    program = f"02641/{day}/morning"
    token = csrf_of(html)
    assert 'name="kind" value="played"' not in html and "hiện khi đến giờ phát" in html
    early = op.post("/communes/02641/reports", data={"csrf_token": token, "kind": "played", "program": program})
    assert early.status_code == 400 and "chưa đến giờ phát" in early.text
    r = op.post(
        "/communes/02641/reports",
        data={"csrf_token": token, "kind": "problem", "program": program, "note": "Loa cụm thôn 3 bị rè"},
    )
    assert r.status_code == 400
    assert play_reports(web.db, "02641") == []
    # a report about another commune's program is refused
    bad = op.post(
        "/communes/02641/reports", data={"csrf_token": token, "kind": "played", "program": f"02695/{day}/morning"}
    )
    assert bad.status_code == 400


def test_an_operator_of_another_commune_gets_404_for_every_file(built: Built, web: Web) -> None:
    other = web.client("dai-banlau")
    day = built.day.isoformat()
    manifest = mf.read(manifest_path_for(built.project.settings.outbox_dir, "02641", f"programs/{day}", "y-ty-loa"))
    urls = [
        "/communes/02641",
        f"/communes/02641/programs/{day}/morning.mp3",
        f"/communes/02641/programs/{day}.zip",
        f"/communes/02641/files/{manifest.files[0].path}",
        f"/communes/02641/files/programs/{day}/manifests/y-ty-loa.json",
    ]
    for url in urls:
        assert other.get(url).status_code == 404, url
    own = other.get("/communes/02695")
    assert own.status_code == 200 and "THÔNG BÁO KHẨN" not in own.text  # the flood warning was for Y Tý
    # the joined MP3 of a commune without a single-file endpoint is made on demand
    assert other.get(f"/communes/02695/programs/{day}/morning.mp3").status_code == 200
    # no way out of the commune's folder
    mine = web.client("dai-yty")
    for bad in [
        "../02695/media",
        "..%2F..%2Fsecret_key",
        "%2Fetc%2Fpasswd",
        ".state/x",
        f"programs/{day}/../../../loa.db",
    ]:
        assert mine.get(f"/communes/02641/files/{bad}").status_code == 404, bad


# --- pull API ---------------------------------------------------------------------------


@pytest.fixture
def token(web: Web) -> str:
    value = "tok-" + hashlib.sha256(web.url.encode()).hexdigest()[:24]
    add_token(web.db, "endpoint", "y-ty-loa", value)
    return value


def api(web: Web, token: str | None) -> httpx.Client:
    client = web.client()
    if token:
        client.headers["Authorization"] = f"Bearer {token}"
    return client


def test_the_manifest_needs_the_endpoints_own_token(built: Built, web: Web, token: str) -> None:
    day = built.day.isoformat()
    url = f"/api/v1/endpoints/y-ty-loa/programs?date={day}"
    assert api(web, None).get(url).status_code == 401
    assert api(web, "wrong").get(url).status_code == 401
    add_token(web.db, "endpoint", "ban-lau-loa", "tok-ban-lau")
    assert api(web, "tok-ban-lau").get(url).status_code == 404  # another endpoint's token sees nothing
    client = api(web, token)
    r = client.get(url)
    assert r.status_code == 200
    data = mf.parse(r.content)
    assert data.endpoint == "y-ty-loa" and data.commune == "02641"
    assert (
        r.content
        == manifest_path_for(built.project.settings.outbox_dir, "02641", f"programs/{day}", "y-ty-loa").read_bytes()
    )
    assert not any(f.path == f"programs/{day}/morning.mp3" for f in data.files)  # the single MP3 is for y-ty-radio
    sig = client.get(f"/api/v1/endpoints/y-ty-loa/files/programs/{day}/manifest.json.sig")
    assert sig.status_code == 200 and len(sig.content) == 64
    assert client.get(url, headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert client.get("/api/v1/endpoints/y-ty-loa/programs?date=2001-01-01").status_code == 404
    me = client.get("/api/v1/me").json()
    assert me["endpoint"] == "y-ty-loa" and me["commune"] == "02641"
    emergencies = client.get("/api/v1/endpoints/y-ty-loa/emergencies").json()
    assert [e["title"] for e in emergencies] == ["Cảnh báo lũ quét"]
    assert emergencies[0]["folder"] == f"emergency/{built.emergency}"
    assert client.get("/bulletins").status_code == 303  # a token is no session


def test_files_have_etag_and_ranges(built: Built, web: Web, token: str) -> None:
    client = api(web, token)
    manifest = client.get(f"/api/v1/endpoints/y-ty-loa/programs?date={built.day.isoformat()}").json()
    entry = next(f for f in manifest["files"] if f["path"].startswith("media/"))
    url = f"/api/v1/endpoints/y-ty-loa/files/{entry['path']}"
    whole = client.get(url)
    assert whole.status_code == 200 and len(whole.content) == entry["bytes"]
    assert hashlib.sha256(whole.content).hexdigest() == entry["sha256"]
    etag = whole.headers["etag"]
    assert whole.headers["accept-ranges"] == "bytes"
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    part = client.get(url, headers={"Range": "bytes=100-"})
    assert part.status_code == 206 and part.content == whole.content[100:]
    assert part.headers["content-range"] == f"bytes 100-{entry['bytes'] - 1}/{entry['bytes']}"
    for bad in ["../02695/media", "%2E%2E/%2E%2E/secret_key", ".state/x", "/etc/passwd"]:
        assert client.get(f"/api/v1/endpoints/y-ty-loa/files/{bad}").status_code == 404, bad


def test_a_token_cannot_read_a_sibling_endpoints_manifest(built: Built, web: Web, token: str) -> None:
    """y-ty-loa and y-ty-radio share commune 02641: each token reads only its own signed manifest."""
    client = api(web, token)
    day = built.day.isoformat()
    folder = built.project.settings.outbox_dir / "02641" / "programs" / day / "manifests"
    assert (folder / "y-ty-radio.json").is_file()  # the sibling's manifest exists in the outbox
    for path in (
        f"programs/{day}/manifests/y-ty-radio.json",
        f"programs/{day}/manifests/y-ty-radio.json.sig",
        f"programs/{day}/manifests/y-ty-loa.json",  # its own too: only as manifest.json, never by outbox path
    ):
        r = client.get(f"/api/v1/endpoints/y-ty-loa/files/{path}")
        assert r.status_code == 404 and not r.json()["detail"].isascii(), path
    own = client.get(f"/api/v1/endpoints/y-ty-loa/files/programs/{day}/manifest.json")
    assert own.status_code == 200 and mf.parse(own.content).endpoint == "y-ty-loa"


def test_the_openapi_document_describes_the_pull_api(web: Web) -> None:
    doc = web.client().get("/api/openapi.json").json()
    paths = doc["paths"]
    assert "/api/v1/endpoints/{name}/programs" in paths
    assert "/api/v1/endpoints/{name}/files/{path}" in paths
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    assert not any(p.startswith("/bulletins") for p in paths)  # pages are not API


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context, config: str = typer.Option(..., "--config")) -> None:
        ctx.obj = AppContext(config_path=config)

    web_cmds.register(app)
    return app


def test_token_create_and_user_add_commands(built: Built, web: Web) -> None:
    runner = CliRunner()
    config = str(built.project.config)
    r = runner.invoke(_cli(), ["--config", config, "token", "create", "y-ty-radio", "--json"])
    assert r.exit_code == 0, r.output
    value = json.loads(r.stdout)["token"]
    assert value not in (built.project.settings.data_dir / "loa.db").read_bytes().decode("latin-1")  # stored hashed
    me = api(web, value).get("/api/v1/me").json()
    assert me == me | {"endpoint": "y-ty-radio", "format": "single"}
    r = runner.invoke(
        _cli(),
        ["--config", config, "user", "add", "dai-moi", "--role", "operator", "--commune", "02641", "--password-stdin"],
        input="mot-mat-khau-dai\n",
    )
    assert r.exit_code == 0, r.output
    client = web.client()
    from tests.web_support import login

    assert login(client, "dai-moi", "mot-mat-khau-dai").headers["location"] == "/communes/02641"
    r = runner.invoke(
        _cli(), ["--config", config, "user", "add", "x", "--role", "operator", "--password-stdin"], input="y" * 12
    )
    assert r.exit_code != 0 and "--commune" in str(r.exception)


def test_an_approver_dispatches_an_emergency_now(built: Built, web: Web) -> None:
    assert built.emergency is not None
    landed = built.project.root / "endpoints" / "y-ty-loa" / "emergency" / str(built.emergency)
    shutil.rmtree(landed)
    editor = web.client("bientap")
    page = editor.get(f"/bulletins/{built.emergency}").text
    assert "Phát khẩn ngay" not in page
    assert editor.post(f"/bulletins/{built.emergency}/dispatch", data={"csrf_token": csrf_of(page)}).status_code == 403
    approver = web.client("duyet")
    page = approver.get(f"/bulletins/{built.emergency}").text
    assert "Phát khẩn ngay" in page
    # a post without the confirmation's token only leads to the confirmation page
    r = approver.post(f"/bulletins/{built.emergency}/dispatch", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 303 and r.headers["location"] == f"/bulletins/{built.emergency}/dispatch"
    assert not landed.exists()
    confirm = approver.get(f"/bulletins/{built.emergency}/dispatch").text
    assert "1 xã" in confirm and "Y Tý" in confirm and 'name="action_token"' in confirm
    form = {
        "csrf_token": csrf_of(confirm),
        "action_token": re.search(r'name="action_token" value="([^"]+)"', confirm)[1],
    }
    r = approver.post(f"/bulletins/{built.emergency}/dispatch", data=form)
    assert r.status_code == 303 and r.headers["location"].startswith("/actions/")
    result = approver.get(r.headers["location"])
    assert (
        result.status_code == 200
        and "Đã phát khẩn bản tin" in result.text
        and "Mọi điểm nhận đã nhận được" in result.text
    )
    manifest = mf.read(landed / "manifest.json")
    assert manifest.emergency is not None
    assert manifest.emergency.play == "now" and manifest.emergency.bulletin == built.emergency
    # reloading the result, or sending the same form again, dispatches nothing more
    shutil.rmtree(landed)
    assert approver.get(r.headers["location"]).status_code == 200
    again = approver.post(f"/bulletins/{built.emergency}/dispatch", data=form)
    assert again.status_code == 303 and again.headers["location"] == r.headers["location"]
    assert not landed.exists()
    dispatched = [e for e in audit.entries(web.db, action="bulletin.dispatched")]
    assert len(dispatched) == 1 and dispatched[0].actor == "duyet"


def test_the_operator_download_reuses_the_joined_single_file(
    built: Built, web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Y Tý's single-file MP3 was joined into the one joined-MP3 cache by packaging; the
    operator's download of the same program, when it has to join, gets that file without ffmpeg."""
    from pipeline.audio import ffmpeg_write

    day = built.day.isoformat()
    settings = built.project.settings
    single = settings.outbox_dir / "02641" / "programs" / day / "morning.mp3"
    [cached] = [p for p in (settings.cache_dir / "joined").glob("*.mp3") if p.samefile(single)]

    def no_join(*args: object, **kw: object) -> None:
        raise AssertionError("joined again")

    monkeypatch.setattr(ffmpeg_write, "concat_mp3", no_join)
    single.unlink()  # the route now has to join the program's items itself
    try:
        mp3 = web.client("dai-yty").get(f"/communes/02641/programs/{day}/morning.mp3")
    finally:
        os.link(cached, single)
    assert mp3.status_code == 200 and mp3.content == cached.read_bytes()
