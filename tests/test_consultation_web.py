"""Consultations on the web, through a real uvicorn: the public page and its guards, staff pages,
the village meeting, devices."""

from __future__ import annotations

import datetime as dt
import io
import re
import xml.etree.ElementTree as ET  # our own server's SVG, not untrusted input
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.intake import parse_bulletin
from pipeline.store import bulletins as bulletin_store
from pipeline.store import consultations as store
from pipeline.store import tokens as token_store
from tests import audio_fixtures as fx
from tests.web_support import Web, csrf_of, logged_in_csrf, serve_project, small_project, standard_users

CAMPAIGN = """+++
title = "{title}"
category = "policy"
priority = "routine"
source = "Sở Nông nghiệp và Môi trường"
valid_from = {start}
valid_until = {end}
targets = {targets}
languages = ["vi", "hmn"]
policy = "{policy}"
stage = "draft"

[consultation]
code = "{code}"
opens = {opens}
closes = {closes}
agency = "Sở Nông nghiệp và Môi trường tỉnh Lào Cai"

[[consultation.question]]
text = "Bà con có đồng ý với mức hỗ trợ không?"
kind = "yesno"

[[consultation.question]]
text = "Cần giống nào nhất?"
kind = "choice"
choices = ["Lúa", "Ngô", "Lợn"]

[[consultation.question]]
text = "Ý kiến khác?"
kind = "text"
+++
Dự thảo hỗ trợ giống cây trồng, vật nuôi.
"""
TOKEN_RE = re.compile(r'name="form_token" value="([^"]+)"')


def add_campaign(
    web: Web,
    *,
    code: str = "GY27",
    opens: int = -1,
    closes: int = 10,
    approve: bool = True,
    targets: str = '["02641"]',
    policy: str = "Hỗ trợ giống 2027",
) -> int:
    settings = web.project.settings
    today = dt.datetime.now(settings.tz).date()
    text = CAMPAIGN.format(
        title=f"Lấy ý kiến dự thảo {code}",
        code=code,
        targets=targets,
        policy=policy,
        start=(today + dt.timedelta(days=min(opens, 0))).isoformat(),
        end=(today + dt.timedelta(days=max(closes, 0) + 1)).isoformat(),
        opens=(today + dt.timedelta(days=opens)).isoformat(),
        closes=(today + dt.timedelta(days=closes)).isoformat(),
    )
    b = parse_bulletin(text, where="c.md", deployment=web.project.deployment).bulletin
    [(saved, _)] = bulletin_store.save_bulletins(web.db, [b])
    assert saved.id is not None
    if approve:
        bulletin_store.approve(web.db, saved.id, by="test")
    return store.get_campaign(web.db, code).id


def answer(client: httpx.Client, code: str = "GY27", **fields: str) -> httpx.Response:
    page = client.get(f"/y-kien/{code}")
    assert page.status_code == 200, page.text
    m = TOKEN_RE.search(page.text)
    assert m, page.text
    data = {"form_token": m.group(1), "q1": "yes", "q2": "Lúa", "q3": "", "website": ""} | fields
    return client.post(f"/y-kien/{code}", data=data)


def test_a_citizen_answers_and_staff_see_it(web: Web) -> None:
    cid = add_campaign(web)
    citizen = web.client()
    page = citizen.get("/y-kien/GY27")
    assert page.status_code == 200
    assert '<html lang="vi">' in page.text and "<script" not in page.text
    assert "Nghị định 13/2023/NĐ-CP" in page.text  # the consent line
    assert len(page.content) < 8000  # light for 2G
    r = answer(
        citizen,
        q3="<script>alert('x')</script><b>đậm</b>",
        name="Giàng A Páo",
        phone="0912 345 678",
        commune="02641",
        consent="yes",
    )
    assert r.status_code == 200 and "Cảm ơn bà con" in r.text
    [a] = store.list_answers(web.db, cid)
    assert a.values == ("yes", "Lúa", "<script>alert('x')</script><b>đậm</b>")
    assert (a.phone, a.consent, a.channel, a.commune) == ("0912345678", True, "web", "02641")

    approver = web.client("duyet")
    staff = approver.get(f"/consultations/{cid}").text
    assert "1 ý kiến" in staff
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&lt;b&gt;đậm&lt;/b&gt;" in staff
    assert "<script>alert" not in staff and "<b>đậm" not in staff
    assert "0912345678" in staff  # an approver may call back
    editor = web.client("bientap")
    seen = editor.get(f"/consultations/{cid}").text
    assert "091****678" in seen and "0912345678" not in seen
    assert "0912345678" not in editor.get(f"/consultations/{cid}/export.csv").text
    assert "0912345678" in approver.get(f"/consultations/{cid}/export.csv").text
    report = approver.get(f"/consultations/{cid}/report").text
    assert "Báo cáo tổng hợp" in report and "0912345678" not in report and "Giàng A Páo" not in report
    svg = re.search(r"<svg.*?</svg>", staff, re.DOTALL)
    assert svg is not None
    ET.fromstring(svg.group(0))  # well-formed SVG, server-rendered


def test_name_or_phone_needs_consent_and_bad_values_are_refused(web: Web) -> None:
    cid = add_campaign(web)
    citizen = web.client()
    r = answer(citizen, phone="0912345678")
    assert r.status_code == 400 and "đánh dấu đồng ý" in r.text
    assert answer(citizen, q2="Khoai").status_code == 400
    assert answer(citizen, phone="12").status_code == 400
    assert answer(citizen, commune="02695").status_code == 400  # not a targeted commune
    assert store.list_answers(web.db, cid) == []


def test_csrf_holds(web: Web) -> None:
    cid = add_campaign(web)
    add_campaign(web, code="BX1")
    citizen = web.client()
    page = citizen.get("/y-kien/GY27")
    token = TOKEN_RE.search(page.text).group(1)  # type: ignore[union-attr]
    base = {"q1": "yes", "q2": "", "q3": "", "website": ""}
    # no token, a forged one, another campaign's, none of the cookie
    assert citizen.post("/y-kien/GY27", data=base).status_code == 403
    assert citizen.post("/y-kien/GY27", data=base | {"form_token": token[:-2] + "xx"}).status_code == 403
    other = TOKEN_RE.search(citizen.get("/y-kien/BX1").text).group(1)  # type: ignore[union-attr]
    assert citizen.post("/y-kien/GY27", data=base | {"form_token": other}).status_code == 403
    stranger = web.client()  # a cross-site post carries the token (if leaked) but not the same-site cookie
    r = stranger.post("/y-kien/GY27", data=base | {"form_token": token})
    assert r.status_code == 403 and "Biểu mẫu đã hết hạn" in r.text
    assert citizen.post("/y-kien/GY27", data=base | {"form_token": token}).status_code == 200
    assert citizen.post("/y-kien/GY27", data=base | {"form_token": token}).status_code == 403  # good once
    assert len(store.list_answers(web.db, cid)) == 1
    assert page.headers["set-cookie"].lower().count("samesite=strict") == 1


def test_honeypot_and_size_limit(web: Web) -> None:
    cid = add_campaign(web)
    citizen = web.client()
    r = answer(citizen, website="http://spam.example")
    assert r.status_code == 200 and "Cảm ơn" in r.text  # the bot is told nothing
    r = answer(citizen, q3="x" * 20_000)
    assert r.status_code == 413 and "quá dài" in r.text
    assert store.list_answers(web.db, cid) == []


@pytest.fixture
def limited(tmp_path: Path, voices_with_placeholders: Path) -> Iterator[Web]:
    project = small_project(tmp_path / "p", voices_with_placeholders)
    with project.config.open("a", encoding="utf-8") as f:
        f.write("[consultation]\nanswers_per_client_per_hour = 2\nanswers_per_campaign_per_hour = 3\n")
    db = project.db()
    standard_users(db)
    db.close()
    with serve_project(project) as served:
        yield served


def test_rate_limits_trip_per_client_and_per_campaign(limited: Web) -> None:
    cid = add_campaign(limited)
    add_campaign(limited, code="BX1")
    citizen = limited.client()
    assert answer(citizen).status_code == 200
    assert answer(citizen).status_code == 200
    r = answer(citizen)
    assert r.status_code == 429 and "quá nhiều ý kiến" in r.text
    assert len(store.list_answers(limited.db, cid)) == 2
    # another campaign has its own budget; its campaign-wide limit trips at 3 whoever sends
    assert answer(citizen, "BX1").status_code == 200
    assert answer(limited.client(), "BX1").status_code == 200
    campaign = limited.app.state.loa_consultation_guards.per_client
    campaign._failures.clear()  # as if the clients were different addresses
    assert answer(limited.client(), "BX1").status_code == 200
    campaign._failures.clear()
    assert answer(limited.client(), "BX1").status_code == 429


def test_closed_and_unapproved_campaigns(web: Web) -> None:
    add_campaign(web, code="CU1", opens=-20, closes=-1)
    add_campaign(web, code="DR1", approve=False)
    citizen = web.client()
    page = citizen.get("/y-kien/CU1")
    assert page.status_code == 200 and "đã kết thúc ngày" in page.text and "<form" not in page.text
    r = citizen.post("/y-kien/CU1", data={"q1": "yes"})
    assert r.status_code == 403 and "ý kiến không còn được nhận" in r.text
    assert citizen.get("/y-kien/DR1").status_code == 404  # a draft is not public yet
    assert citizen.get("/y-kien/NOPE1").status_code == 404


def test_qr_code_and_poster(web: Web) -> None:
    add_campaign(web)
    client = web.client()
    svg = client.get("/y-kien/GY27/qr.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(svg.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"  # a browser draws it only with the namespace
    poster = client.get("/y-kien/GY27/in").text
    assert "/y-kien/GY27/qr.svg" in poster and f"{web.url}/y-kien/GY27" in poster


def test_moderation_hide_topic_merge(web: Web) -> None:
    cid = add_campaign(web)
    citizen = web.client()
    for _ in range(3):
        assert answer(citizen).status_code == 200
    a1, a2, a3 = (a.id for a in store.list_answers(web.db, cid))
    editor = web.client("bientap")
    token = logged_in_csrf(editor, f"/consultations/{cid}")
    url = f"/consultations/{cid}/answers"
    assert editor.post(f"{url}/{a1}", data={"csrf_token": token, "action": "hide"}).status_code == 303
    assert (
        editor.post(f"{url}/{a2}", data={"csrf_token": token, "action": "topic", "topic": "mức hỗ trợ"}).status_code
        == 303
    )
    assert editor.post(f"{url}/{a3}", data={"csrf_token": token, "action": "merge", "into": str(a2)}).status_code == 303
    assert editor.post(f"{url}/{a2}", data={"csrf_token": "bad", "action": "hide"}).status_code == 403  # CSRF
    bad = editor.post(f"{url}/{a2}", data={"csrf_token": token, "action": "merge", "into": str(a2)})
    assert bad.status_code == 400 and "chính nó" in bad.text
    page = editor.get(f"/consultations/{cid}").text
    assert "1 ý kiến" in page and "1 ý kiến bị ẩn" in page and "1 ý kiến trùng đã gộp" in page
    operator = web.client("dai-yty")
    assert operator.get(f"/consultations/{cid}").status_code == 403


def test_agency_answer_becomes_a_follow_up_draft(web: Web) -> None:
    cid = add_campaign(web, targets='["02641"]')
    answer(web.client())
    approver = web.client("duyet")
    token = logged_in_csrf(approver, f"/consultations/{cid}")
    r = approver.post(
        f"/consultations/{cid}/agency-answer",
        data={"csrf_token": token, "answer": "Sở đã nâng mức hỗ trợ giống lúa lên 80%."},
    )
    assert r.status_code == 303
    bid = int(r.headers["location"].split("/")[2].split("?")[0])
    b = bulletin_store.get_bulletin(web.db, bid)
    assert b.status == "draft" and b.targets == ("02641",) and b.stage == "promulgated"
    assert b.body.startswith("Ý kiến của bà con đã được tiếp thu.") and "80%" in b.body
    assert b.policy == "Hỗ trợ giống 2027"
    shown = approver.get(f"/bulletins/{store.get_campaign(web.db, cid).bulletin_id}").text
    assert "mã GY27" in shown and "Hỗ trợ giống 2027" in shown
    assert store.get_campaign(web.db, cid).followup_bulletin_id == bid
    timeline = approver.get("/policies", params={"name": "Hỗ trợ giống 2027"}).text
    assert "Dự thảo, lấy ý kiến" in timeline and "Đã ban hành" in timeline and "80%" in timeline


def test_operator_records_a_village_meeting_with_a_voice_message(web: Web, tmp_path: Path) -> None:
    cid = add_campaign(web)
    operator = web.client("dai-yty")
    listing = operator.get("/communes/02641/consultations").text
    assert "Ghi ý kiến buổi họp thôn" in listing
    url = f"/communes/02641/consultations/{cid}/meeting"
    token = csrf_of(operator.get(url).text)
    voice = fx.speech(tmp_path / "loi-nhan.m4a", "Bà con thôn Tả Phìn đồng ý với dự thảo")
    with voice.open("rb") as f:
        r = operator.post(
            url,
            data={"csrf_token": token, "people": "35", "language": "hmn", "q1": "yes", "note3": "Xin hỗ trợ sớm"},
            files={"voice": ("loi-nhan.m4a", f, "audio/mp4")},
        )
    assert r.status_code == 303, r.text
    [a] = store.list_answers(web.db, cid)
    assert (a.channel, a.people, a.language, a.values[0], a.notes[2]) == ("meeting", 35, "hmn", "yes", "Xin hỗ trợ sớm")
    wav = web.project.settings.data_dir / a.recording
    assert wav.is_file() and wav.read_bytes()[:4] == b"RIFF"
    staff = web.client("bientap")
    heard = staff.get(f"/consultations/{cid}/answers/{a.id}/voice")
    assert heard.status_code == 200 and heard.content == wav.read_bytes()
    assert operator.get(f"/consultations/{cid}/answers/{a.id}/voice").status_code == 403
    # not audio: refused in Vietnamese, nothing stored
    r = operator.post(
        url,
        data={"csrf_token": token, "people": "3", "language": "vi", "q1": "no"},
        files={"voice": ("x.mp3", io.BytesIO(b"<html>not audio</html>" * 50), "audio/mpeg")},
    )
    assert r.status_code == 400 and "không phải âm thanh" in r.text
    assert len(store.list_answers(web.db, cid)) == 1
    assert operator.post(url, data={"csrf_token": token, "people": "0", "language": "vi"}).status_code == 400
    other = web.client("dai-banlau")
    assert other.get(url).status_code == 404


def test_device_answers_with_its_token(web: Web) -> None:
    cid = add_campaign(web)
    add_campaign(web, code="BL1", targets='["02695"]')
    token_store.add_token(web.db, "endpoint", "y-ty-loa", "tok-y-ty-" + "x" * 30)
    device = web.client()
    headers = {"Authorization": "Bearer tok-y-ty-" + "x" * 30}
    body = {"values": ["no", "Ngô", "Cần thêm giống ngô"], "language": "hmn", "people": 1}
    r = device.post("/api/v1/endpoints/y-ty-loa/consultations/GY27/answers", json=body, headers=headers)
    assert r.status_code == 201 and r.json()["commune"] == "02641"
    [a] = store.list_answers(web.db, cid)
    assert (a.channel, a.source, a.values[1]) == ("device", "y-ty-loa", "Ngô")
    assert device.post("/api/v1/endpoints/y-ty-loa/consultations/GY27/answers", json=body).status_code == 401
    r = device.post("/api/v1/endpoints/y-ty-loa/consultations/BL1/answers", json=body, headers=headers)
    assert r.status_code == 404  # another commune's campaign
    bad = body | {"values": ["maybe", "", ""]}
    r = device.post("/api/v1/endpoints/y-ty-loa/consultations/GY27/answers", json=bad, headers=headers)
    assert r.status_code == 422


def test_editing_a_consultation_bulletin_on_the_web_keeps_its_campaign(web: Web) -> None:
    cid = add_campaign(web, approve=False)
    c = store.get_campaign(web.db, cid)
    editor = web.client("bientap")
    page = editor.get(f"/bulletins/{c.bulletin_id}/edit").text
    token = csrf_of(page)
    before = bulletin_store.get_bulletin(web.db, c.bulletin_id)
    r = editor.post(
        f"/bulletins/{c.bulletin_id}/edit",
        data={
            "csrf_token": token,
            "category": "policy",
            "priority": "routine",
            "reference": "",
            "valid_from": before.valid_from.isoformat(),
            "valid_until": before.valid_until.isoformat(),
            "targets": "02641",
            "languages": ["vi", "hmn"],
            "body": "Dự thảo đã sửa: mức hỗ trợ 75%.",
        },
    )
    assert r.status_code == 303, r.text
    after = bulletin_store.get_bulletin(web.db, c.bulletin_id)
    assert after.revision == 2 and "75%" in after.body
    assert after.consultation == before.consultation and after.policy == before.policy


def test_lists_for_staff_and_the_operator(web: Web) -> None:
    cid = add_campaign(web)
    add_campaign(web, code="BL1", targets='["02695"]', policy="Chính sách khác")
    editor = web.client("bientap")  # Bát Xát's editor: Y Tý's campaign, not Bản Lầu's
    listing = editor.get("/consultations").text
    assert f'href="/consultations/{cid}"' in listing and "BL1" not in listing
    policies = editor.get("/policies").text
    assert "Hỗ trợ giống 2027" in policies and "Chính sách khác" not in policies
    assert editor.get("/policies", params={"name": "Chính sách khác"}).status_code == 404
    assert editor.get(f"/consultations/{store.get_campaign(web.db, 'BL1').id}").status_code == 404
    operator = web.client("dai-banlau")
    mine = operator.get("/communes/02695/consultations").text
    assert "BL1" in mine and "GY27" not in mine


@pytest.mark.slow
def test_a_built_program_airs_the_call_and_the_timeline_shows_it(
    tmp_path: Path, voices_with_placeholders: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Through the real nightly stages (espeak-ng, ffmpeg, local endpoints): the call to action airs."""
    from pipeline.nightly import build_day, push_day
    from tests.web_support import shared_segments

    project = small_project(tmp_path / "p", voices_with_placeholders, segments=shared_segments(tmp_path_factory))
    db = project.db()
    standard_users(db)
    db.close()
    with serve_project(project) as web:
        cid = add_campaign(web, opens=0, closes=5)
        settings, deployment = project.settings, project.deployment
        day = dt.datetime.now(settings.tz).date() + dt.timedelta(days=1)
        report = build_day(day, settings=settings, deployment=deployment, db=web.db, commune="02641")
        assert not report.failures, report.failures
        [morning] = [p for p in report.programs if p.slot == "morning"]
        titles = " | ".join(s.title for s in morning.items)
        assert "Lấy ý kiến nhân dân" in titles and "hmn/consultation" in titles, titles
        push_day(day, settings=settings, deployment=deployment, db=web.db)
        c = store.get_campaign(web.db, cid)
        aired = store.airings(web.db, [c.bulletin_id])
        assert {a["commune"] for a in aired} == {"02641"} and all("vi" in a["languages"] for a in aired)
        assert any(a["delivered"] for a in aired)
        timeline = web.client("duyet").get("/policies", params={"name": "Hỗ trợ giống 2027"}).text
        assert "Đã phát" in timeline and "02641" in timeline and "y-ty-loa" in timeline
