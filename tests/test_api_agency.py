"""The agency API: submit, idempotency, 422/403/401, status, recordings; ``loa agency`` commands."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.store import bulletins as bulletin_store
from pipeline.store.agencies import owner_of
from pipeline.store.tokens import list_tokens, revoke_tokens
from tests.audio_fixtures import sine
from tests.conftest import Project
from tests.publish_support import build, bulletin_file, local_today, make_agency, publish_project
from tests.web_support import Web, csrf_of, serve_project, shared_segments, standard_users

MD = {"content-type": "text/markdown; charset=utf-8"}


@pytest.fixture
def api(
    tmp_path: Path, voices_with_placeholders: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Web, dict[str, str]]]:
    """Served project; agencies: so-yte (all), bat-xat-only (group bat-xat), ban-lau (commune 02695)."""
    project = publish_project(tmp_path / "p", voices_with_placeholders, segments=shared_segments(tmp_path_factory))
    db = project.db()
    standard_users(db)
    tokens = {
        "so-yte": make_agency(db, "so-yte", ("all",), "Sở Y tế Lào Cai"),
        "bat-xat": make_agency(db, "bat-xat-only", ("bat-xat",), "Phòng Văn hóa Bát Xát"),
        "ban-lau": make_agency(db, "ban-lau", ("02695",), "UBND xã Bản Lầu"),
    }
    db.close()
    with serve_project(project) as served:
        yield served, tokens


def auth(token: str, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", **extra}


def days(project: Project) -> tuple[dt.date, dt.date]:
    today = local_today(project.settings)
    return today, today + dt.timedelta(days=14)


def test_good_file_is_201_awaiting_and_same_key_gives_same_id(api: tuple[Web, dict[str, str]]) -> None:
    web, tokens = api
    start, end = days(web.project)
    text = bulletin_file(start=start, end=end, targets=["bat-xat"])
    c = web.client()
    headers = auth(tokens["so-yte"], **MD, **{"idempotency-key": "syt-158"})
    r1 = c.post("/api/v1/bulletins", content=text.encode(), headers=headers)
    assert r1.status_code == 201, r1.text
    body = r1.json()
    assert body["status"] == "awaiting" and body["status_url"] == f"/api/v1/bulletins/{body['id']}"
    assert r1.headers["location"] == body["status_url"]
    assert body["culture_centers"] == ["Trung tâm Văn hóa, Thể thao và Truyền thông Bát Xát"]
    r2 = c.post("/api/v1/bulletins", content=text.encode(), headers=headers)
    assert r2.status_code == 201 and r2.json()["id"] == body["id"]
    stored = bulletin_store.list_bulletins(web.db)
    assert [(b.id, b.status) for b in stored] == [(body["id"], "draft")]
    assert owner_of(web.db, body["id"]) == "so-yte"
    # the same key with another file is refused, nothing added
    other = bulletin_file(start=start, end=end, title="Một bản tin khác")
    r3 = c.post("/api/v1/bulletins", content=other.encode(), headers=headers)
    assert r3.status_code == 409 and "Idempotency-Key" in r3.json()["detail"]
    assert r3.json()["code"] == "lifecycle.key_reused"
    assert len(bulletin_store.list_bulletins(web.db)) == 1
    # the approver of the culture center sees it waiting
    approver = web.client("bientap")
    assert "Tiêm vắc-xin sởi" in approver.get("/bulletins?status=draft").text


def test_json_form_is_validated_the_same_way(api: tuple[Web, dict[str, str]]) -> None:
    web, tokens = api
    start, end = days(web.project)
    doc = {
        "title": "Phòng chống rét cho gia súc",
        "category": "notice",
        "priority": "routine",
        "source": "Sở Nông nghiệp",
        "valid_from": start.isoformat(),
        "valid_until": end.isoformat(),
        "targets": ["02641"],
        "languages": ["vi", "hmn"],
        "public": False,
        "body": "Bà con che chắn chuồng trại, dự trữ rơm cỏ cho trâu bò.",
    }
    c = web.client()
    r = c.post("/api/v1/bulletins", json=doc, headers=auth(tokens["so-yte"]))
    assert r.status_code == 201, r.text
    b = bulletin_store.get_bulletin(web.db, r.json()["id"])
    assert (b.title, b.public, b.languages) == ("Phòng chống rét cho gia súc", False, ("vi", "hmn"))
    bad = doc | {"category": "tin-vui"}
    r = c.post("/api/v1/bulletins", json=bad | {"title": "x"}, headers=auth(tokens["so-yte"]))
    assert r.status_code == 422 and r.json()["field"] == "category"


def test_bad_file_is_422_naming_field_and_line_nothing_stored(api: tuple[Web, dict[str, str]]) -> None:
    web, tokens = api
    start, end = days(web.project)
    text = bulletin_file(start=start, end=end).replace('category = "notice"', 'category = "tin-vui"')
    r = web.client().post("/api/v1/bulletins", content=text.encode(), headers=auth(tokens["so-yte"], **MD))
    assert r.status_code == 422
    err = r.json()
    assert err["field"] == "category" and err["line"] == 3
    assert (
        "dòng 3" in err["detail"]
        and "«category»" in err["detail"]
        and "Loại tin «tin-vui» không hợp lệ" in err["detail"]
    )
    assert err["code"] == "bulletin.category.unknown"
    text = bulletin_file(start=start, end=end).replace(f"valid_until = {end.isoformat()}", 'valid_until = "mai"')
    r = web.client().post("/api/v1/bulletins", content=text.encode(), headers=auth(tokens["so-yte"], **MD))
    assert r.status_code == 422 and r.json()["field"] == "valid_until" and r.json()["line"] == 8
    text = bulletin_file(start=start, end=end).replace("+++\nTrạm", 'public = "không"\n+++\nTrạm')
    r = web.client().post("/api/v1/bulletins", content=text.encode(), headers=auth(tokens["so-yte"], **MD))
    assert r.status_code == 422 and r.json()["field"] == "public" and "true hoặc false" in r.json()["detail"]
    assert r.json()["code"] == "bulletin.field.not_bool"
    assert bulletin_store.list_bulletins(web.db) == []


def test_scope_403_other_agency_404_revoked_and_unknown_401(api: tuple[Web, dict[str, str]]) -> None:
    web, tokens = api
    start, end = days(web.project)
    c = web.client()
    for token, targets in (
        (tokens["bat-xat"], ["all"]),
        (tokens["bat-xat"], ["02695"]),
        (tokens["ban-lau"], ["02641"]),
    ):
        text = bulletin_file(start=start, end=end, targets=targets)
        r = c.post("/api/v1/bulletins", content=text.encode(), headers=auth(token, **MD))
        assert r.status_code == 403, (targets, r.text)
        assert "ngoài phạm vi" in r.json()["detail"]
    assert bulletin_store.list_bulletins(web.db) == []
    ok = c.post(
        "/api/v1/bulletins",
        content=bulletin_file(start=start, end=end, targets=["02641"]).encode(),
        headers=auth(tokens["bat-xat"], **MD),
    )
    assert ok.status_code == 201
    bid = ok.json()["id"]
    assert c.get(f"/api/v1/bulletins/{bid}", headers=auth(tokens["bat-xat"])).status_code == 200
    other_agency = c.get(f"/api/v1/bulletins/{bid}", headers=auth(tokens["so-yte"]))
    assert other_agency.status_code == 404 and other_agency.json()["code"] == "lifecycle.not_found"
    # another agency cannot take over the bulletin by sending the same title and source
    same = bulletin_file(start=start, end=end, targets=["all"], body="Nội dung khác.")
    assert c.post("/api/v1/bulletins", content=same.encode(), headers=auth(tokens["so-yte"], **MD)).status_code == 409
    assert c.get(f"/api/v1/bulletins/{bid}", headers=auth("not-a-token-of-anyone")).status_code == 401
    assert c.get(f"/api/v1/bulletins/{bid}").status_code == 401
    revoke_tokens(web.db, "agency", "bat-xat-only")
    r = c.get(f"/api/v1/bulletins/{bid}", headers=auth(tokens["bat-xat"]))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = c.post(
        "/api/v1/bulletins", content=bulletin_file(start=start, end=end).encode(), headers=auth(tokens["bat-xat"], **MD)
    )
    assert r.status_code == 401


def test_recording_put_under_upload_rules(api: tuple[Web, dict[str, str]], tmp_path: Path) -> None:
    web, tokens = api
    start, end = days(web.project)
    c = web.client()
    text = bulletin_file(start=start, end=end, targets=["02641"], languages=["vi", "hmn"])
    bid = c.post("/api/v1/bulletins", content=text.encode(), headers=auth(tokens["so-yte"], **MD)).json()["id"]
    wav = sine(tmp_path / "hmn.wav", seconds=1.0)
    data = wav.read_bytes()
    r = c.put(
        f"/api/v1/bulletins/{bid}/recordings/hmn",
        content=data,
        headers=auth(tokens["so-yte"], **{"content-type": "audio/wav"}),
    )
    assert r.status_code == 201, r.text
    from pipeline.store.recordings import current_recordings

    stored = current_recordings(web.db, [bid])[(bid, "hmn")]  # kept as the internal WAV the upload rules make
    assert r.json()["sha256"] == stored.sha256 == hashlib.sha256(stored.path.read_bytes()).hexdigest()
    not_audio = c.put(
        f"/api/v1/bulletins/{bid}/recordings/hmn",
        content=b"<html>not audio</html>",
        headers=auth(tokens["so-yte"], **{"content-type": "audio/mpeg"}),
    )
    assert not_audio.status_code == 422 and "Không nhận được bản ghi" in not_audio.json()["detail"]
    assert not_audio.json()["code"].startswith("recording.")
    assert (
        c.put(
            f"/api/v1/bulletins/{bid}/recordings/hmn",
            content=data,
            headers=auth(tokens["so-yte"], **{"content-type": "text/html"}),
        ).status_code
        == 415
    )
    other = c.put(
        f"/api/v1/bulletins/{bid}/recordings/hmn",
        content=data,
        headers=auth(tokens["ban-lau"], **{"content-type": "audio/wav"}),
    )
    assert other.status_code == 404


@pytest.mark.slow
def test_approved_in_the_web_and_built_status_says_where_it_airs(api: tuple[Web, dict[str, str]]) -> None:
    web, tokens = api
    today = local_today(web.project.settings)
    c = web.client()
    text = bulletin_file(start=today, end=today + dt.timedelta(days=3), targets=["bat-xat"])
    bid = c.post("/api/v1/bulletins", content=text.encode(), headers=auth(tokens["so-yte"], **MD)).json()["id"]
    assert c.get(f"/api/v1/bulletins/{bid}", headers=auth(tokens["so-yte"])).json()["status"] == "awaiting"
    approver = web.client("duyet")
    page = approver.get(f"/bulletins/{bid}")
    form = {"csrf_token": csrf_of(page.text), "confirm_missing": "hmn"}  # approved without a Mông reading
    r = approver.post(f"/bulletins/{bid}/approve", data=form)
    assert r.status_code == 303
    assert c.get(f"/api/v1/bulletins/{bid}", headers=auth(tokens["so-yte"])).json()["status"] == "approved"
    tomorrow = today + dt.timedelta(days=1)
    build(web.project, web.db, tomorrow)
    status = c.get(f"/api/v1/bulletins/{bid}", headers=auth(tokens["so-yte"])).json()
    assert status["status"] == "on_air", status
    where = {(a["commune"], a["date"], a["slot"]) for a in status["airings"]}
    assert where == {("02641", tomorrow.isoformat(), "morning"), ("02641", tomorrow.isoformat(), "evening")}
    assert all(a["commune_name"] == "Y Tý" and not a["aired"] for a in status["airings"])
    approver.post(f"/bulletins/{bid}/withdraw", data={"csrf_token": csrf_of(page.text)})
    assert c.get(f"/api/v1/bulletins/{bid}", headers=auth(tokens["so-yte"])).json()["status"] == "withdrawn"


def test_openapi_documents_the_agency_api_with_curl(api: tuple[Web, dict[str, str]]) -> None:
    web, _ = api
    spec = web.client().get("/api/openapi.json").json()
    post = spec["paths"]["/api/v1/bulletins"]["post"]
    assert "text/markdown" in post["requestBody"]["content"]
    assert "curl -X POST" in json.dumps(post)
    assert {"401", "403", "422"} <= set(post["responses"])
    assert "/api/v1/bulletins/{bulletin_id}/recordings/{language}" in spec["paths"]


def test_agency_cli_add_token_list_revoke(small_cli, small: Project) -> None:  # type: ignore[no-untyped-def]
    assert small_cli("agency", "add", "so-yte", "--title", "Sở Y tế", "--scope", "all").code == 0
    assert small_cli("agency", "add", "x", "--title", "X", "--scope", "nowhere").code == 2
    r = small_cli("agency", "token", "create", "so-yte", "--json")
    assert r.code == 0
    token = r.json()["token"]  # type: ignore[index]
    listed = small_cli("agency", "token", "list", "--json").json()
    assert [t["agency"] for t in listed] == ["so-yte"] and token not in json.dumps(listed)  # type: ignore[union-attr]
    assert small_cli("agency", "token", "revoke", "so-yte").code == 0
    listed = small_cli("agency", "token", "list", "so-yte", "--json").json()
    assert listed[0]["revoked_at"] is not None  # type: ignore[index]
    from pipeline.store.agencies import agency_of_token

    db = small.db()
    try:
        assert agency_of_token(db, token) is None
    finally:
        db.close()


def test_admin_creates_and_revokes_agency_tokens_in_the_web(api: tuple[Web, dict[str, str]]) -> None:
    import re

    web, _ = api
    admin = web.client("quantri")
    page = admin.get("/admin/agencies")
    assert page.status_code == 200 and "Sở Y tế Lào Cai" in page.text and "Phòng Văn hóa Bát Xát" in page.text
    created = admin.post("/admin/agencies/ban-lau/tokens", data={"csrf_token": csrf_of(page.text)})
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    token = re.search(r'<code class="token">([^<]+)</code>', created.text)
    assert token is not None
    c = web.client()
    headers = auth(token.group(1))
    assert c.get("/api/v1/bulletins/999", headers=headers).status_code == 404  # a live token: not 401
    assert token.group(1) not in admin.get("/admin/agencies").text  # shown once
    [live] = [t for t in list_tokens(web.db, "agency", "ban-lau") if t.last_used_at is not None]
    r = admin.post(f"/admin/agencies/ban-lau/tokens/{live.id}/revoke", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    assert c.get("/api/v1/bulletins/999", headers=headers).status_code == 401
    editor = web.client("bientap")
    assert editor.get("/admin/agencies").status_code == 403
    forged = editor.post("/admin/agencies/ban-lau/tokens", data={"csrf_token": csrf_of(editor.get("/bulletins").text)})
    assert forged.status_code == 403


def test_an_internal_bulletin_stays_internal_when_edited_in_the_web(api: tuple[Web, dict[str, str]]) -> None:
    web, tokens = api
    start, end = days(web.project)
    text = bulletin_file(start=start, end=end, targets=["bat-xat"], public=False)
    bid = (
        web.client().post("/api/v1/bulletins", content=text.encode(), headers=auth(tokens["so-yte"], **MD)).json()["id"]
    )
    editor = web.client("bientap")
    form = editor.get(f"/bulletins/{bid}/edit").text
    assert 'name="internal" value="1" checked' in form
    data = {
        "csrf_token": csrf_of(form),
        "category": "notice",
        "priority": "urgent",
        "reference": "",
        "valid_from": start.isoformat(),
        "valid_until": end.isoformat(),
        "targets": "bat-xat",
        "languages": "vi",
        "internal": "1",
        "body": "Nội dung đã sửa.",
    }
    assert editor.post(f"/bulletins/{bid}/edit", data=data).status_code == 303
    b = bulletin_store.get_bulletin(web.db, bid)
    assert (b.revision, b.priority, b.public) == (2, "priority", False)  # stored by its tier name
    data.pop("internal")
    data["body"] = "Nội dung công khai."
    assert editor.post(f"/bulletins/{bid}/edit", data=data).status_code == 303
    assert bulletin_store.get_bulletin(web.db, bid).public is True


def test_a_consultation_submitted_by_an_agency_gives_its_public_page(api: tuple[Web, dict[str, str]]) -> None:
    web, tokens = api
    start, end = days(web.project)
    text = bulletin_file(
        title="Dự thảo hỗ trợ giống", start=start, end=end, targets=["bat-xat"], category="policy"
    ).replace(
        "+++\nTrạm",
        'policy = "giong-2027"\nstage = "draft"\n\n[consultation]\ncode = "GY27"\n'
        f'opens = {start.isoformat()}\ncloses = {end.isoformat()}\nagency = "Sở Nông nghiệp"\n\n'
        '[[consultation.question]]\ntext = "Bà con có đồng ý không?"\nkind = "yesno"\n+++\nTrạm',
    )
    c = web.client()
    r = c.post("/api/v1/bulletins", content=text.encode(), headers=auth(tokens["so-yte"], **MD))
    assert r.status_code == 201, r.text
    status = c.get(r.json()["status_url"], headers=auth(tokens["so-yte"])).json()
    assert status["consultation_url"] == "/y-kien/GY27"


def test_a_disabled_agency_is_refused_until_enabled_cli(small_cli, small: Project) -> None:  # type: ignore[no-untyped-def]
    from pipeline.store.agencies import agency_of_token

    assert small_cli("agency", "add", "so-yte", "--title", "Sở Y tế", "--scope", "all").code == 0
    token = small_cli("agency", "token", "create", "so-yte", "--json").json()["token"]
    db = small.db()
    try:
        assert agency_of_token(db, token) is not None
        r = small_cli("agency", "disable", "so-yte")
        assert r.code == 0 and "disabled agency so-yte" in r.out
        assert agency_of_token(db, token) is None  # the token itself is not revoked: the agency is off
        assert small_cli("agency", "list", "--json").json()[0]["disabled"] is True  # type: ignore[index]
        assert small_cli("agency", "enable", "so-yte").code == 0
        assert agency_of_token(db, token) is not None
        assert small_cli("agency", "disable", "nobody").code == 2
    finally:
        db.close()


def test_an_admin_disables_an_agency_and_its_token_gets_401(api: tuple[Web, dict[str, str]]) -> None:
    web, tokens = api
    c = web.client()
    headers = auth(tokens["so-yte"], **MD)
    assert c.get("/api/v1/bulletins/999", headers=headers).status_code == 404  # live: not 401
    admin = web.client("quantri")
    page = admin.get("/admin/agencies")
    assert "Tạm dừng cơ quan" in page.text
    r = admin.post("/admin/agencies/so-yte/disable", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303
    after = admin.get(r.headers["location"]).text
    assert "Đã tạm dừng cơ quan" in after and "Cho phép gửi tin lại" in after
    denied = c.get("/api/v1/bulletins/999", headers=headers)
    assert denied.status_code == 401 and "tạm dừng" in denied.json()["detail"]
    start, end = days(web.project)
    text = bulletin_file(start=start, end=end, targets=["bat-xat"])
    assert c.post("/api/v1/bulletins", content=text.encode(), headers=headers).status_code == 401
    other = c.get("/api/v1/bulletins/999", headers=auth(tokens["ban-lau"]))
    assert other.status_code == 404  # another agency is not affected
    editor = web.client("bientap")
    forged = editor.post("/admin/agencies/so-yte/enable", data={"csrf_token": csrf_of(editor.get("/bulletins").text)})
    assert forged.status_code == 403
    assert admin.post("/admin/agencies/so-yte/enable", data={"csrf_token": csrf_of(after)}).status_code == 303
    assert c.get("/api/v1/bulletins/999", headers=headers).status_code == 404
    from pipeline.store import audit

    assert [(e.action, e.actor) for e in audit.entries(web.db, action="agency.")][:2] == [
        ("agency.enabled", "quantri"),
        ("agency.disabled", "quantri"),
    ]
