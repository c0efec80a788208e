"""Operator decisions on normal bulletins: the rule, the store, the operator's page, the pull API, the plan."""

from __future__ import annotations

import dataclasses
import datetime as dt

import httpx
import pytest

from pipeline.broadcast.decisions import check_decision
from pipeline.errors import BulletinError
from pipeline.messages import vietnamese
from pipeline.models import Bulletin, Decision
from pipeline.produce import Producer
from pipeline.store import bulletins as bulletin_store
from pipeline.store import decisions as decision_store
from pipeline.store.tokens import add_token
from tests.conftest import Project
from tests.web_support import Web, add_bulletin, csrf_of, logged_in_csrf

TODAY = dt.date(2026, 12, 1)


def normal(**kw: object) -> Bulletin:
    base = Bulletin(
        title="Họp thôn", category="notice", priority="normal", source="UBND xã", reference="",
        valid_from=dt.date(2026, 12, 1), valid_until=dt.date(2026, 12, 10), targets=("02641",),
        languages=("vi",), body="Nội dung.", id=7, status="approved",
    )  # fmt: skip
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bulletin", "decision", "until", "reason", "message"),
    [
        (normal(priority="priority"), "declined", None, "x", "chỉ bản tin thông thường mới do xã quyết định"),
        (normal(targets=("02695",)), "accepted", None, "", "không gửi cho xã Y Tý"),
        (normal(status="draft"), "accepted", None, "", "chưa được duyệt"),
        (normal(valid_until=dt.date(2026, 11, 30)), "accepted", None, "", "đã hết hiệu lực ngày 30/11/2026"),
        (normal(), "postponed", None, "", "quyết định 'postponed' không hợp lệ"),
        (normal(), "declined", None, "   ", "hãy ghi lý do từ chối"),
        (normal(), "declined", None, "x" * 501, "lý do dài quá 500 ký tự"),
        (normal(), "deferred", None, "", "hãy chọn ngày phát"),
        (normal(), "deferred", TODAY, "", "phải sau hôm nay (01/12/2026)"),
        (normal(), "deferred", dt.date(2026, 12, 11), "", "chỉ có hiệu lực đến 10/12/2026"),
    ],
)
def test_the_rule_refuses_with_a_vietnamese_reason(
    project: Project, bulletin: Bulletin, decision: str, until: dt.date | None, reason: str, message: str
) -> None:
    y_ty = project.deployment.commune("02641")
    assert y_ty is not None
    with pytest.raises(BulletinError) as err:
        check_decision(bulletin, y_ty, decision, until=until, reason=reason, by="user:op", today=TODAY)
    assert str(err.value).startswith("bulletin 7: ") and err.value.code.startswith("decision.")
    said = vietnamese(err.value)
    assert said.startswith("bản tin #7: ") and message in said


def test_the_rule_accepts_and_keeps_only_what_belongs(project: Project) -> None:
    y_ty = project.deployment.commune("02641")
    assert y_ty is not None
    ok = check_decision(normal(targets=("bat-xat",)), y_ty, "accepted", until=TODAY, reason="", by="u", today=TODAY)
    assert ok == Decision(7, "02641", "accepted", None, "", "u")
    later = dt.date(2026, 12, 10)
    d = check_decision(normal(), y_ty, "deferred", until=later, reason=" chờ ", by="u", today=TODAY)
    assert (d.until, d.reason) == (later, "chờ")


# --- the operator's page and the staff's view --------------------------------------------


def _ids(web: Web) -> tuple[int, int, int]:
    p, d, s = web.project, web.project.deployment, web.project.settings
    normal_id = add_bulletin(web.db, d, s, title="Họp thôn về gia hạn thẻ BHYT", priority="normal")
    prio_id = add_bulletin(web.db, d, s, title="Tiêm vắc-xin sởi", priority="priority")
    other_id = add_bulletin(web.db, d, s, title="Tin của Bản Lầu", targets='["02695"]', priority="routine")
    assert p is not None
    return normal_id, prio_id, other_id


def test_operator_declines_defers_and_accepts_and_staff_see_it(web: Web) -> None:
    normal_id, prio_id, other_id = _ids(web)
    op = web.client("dai-yty")
    page = op.get("/communes/02641/decisions")
    assert page.status_code == 200
    assert "Họp thôn về gia hạn thẻ BHYT" in page.text and "chưa quyết định" in page.text
    assert "Tiêm vắc-xin sởi" not in page.text  # a priority bulletin is not the commune's to decide
    assert "Tin của Bản Lầu" not in page.text
    assert "/communes/02641/decisions" in op.get("/communes/02641").text  # linked from the operator's page
    token = csrf_of(page.text)

    def post(**fields: str) -> httpx.Response:
        return op.post("/communes/02641/decisions", data={"csrf_token": token, "bulletin": str(normal_id)} | fields)

    refused = post(decision="declined", reason="")
    assert refused.status_code == 400 and "hãy ghi lý do từ chối" in refused.text
    assert decision_store.decisions(web.db) == {}
    assert post(decision="declined", reason="Đã thông báo ở họp thôn").headers["location"].endswith("?ok=declined")
    [d] = decision_store.decisions(web.db).values()
    assert (d.decision, d.reason, d.by) == ("declined", "Đã thông báo ở họp thôn", "user:dai-yty")
    assert "Từ chối" in op.get("/communes/02641/decisions").text

    today = dt.datetime.now(web.project.settings.tz).date()
    until = today + dt.timedelta(days=3)
    assert post(decision="deferred", until=until.isoformat()).status_code == 303
    [d] = decision_store.decisions(web.db).values()  # the latest decision replaces the earlier one
    assert (d.decision, d.until, d.reason) == ("deferred", until, "")
    # a bulletin of another commune, or an unknown one, does not exist here
    assert post(decision="accepted", bulletin=str(other_id)).status_code == 404
    assert post(decision="accepted", bulletin="99999").status_code == 404
    assert post(decision="accepted", bulletin=str(prio_id)).status_code == 400

    staff = web.client("duyet")
    detail = staff.get(f"/bulletins/{normal_id}").text
    assert "Quyết định của các xã" in detail and "Hoãn" in detail and until.strftime("%d/%m/%Y") in detail
    assert "Thông thường" in detail  # the tier's Vietnamese name
    assert "Ưu tiên" in staff.get(f"/bulletins/{prio_id}").text
    # an editor may see the commune's page (in scope) but not decide for it
    editor = web.client("bientap")
    editor_token = logged_in_csrf(editor, "/bulletins")
    r = editor.post(
        "/communes/02641/decisions",
        data={"csrf_token": editor_token, "bulletin": str(normal_id), "decision": "accepted"},
    )
    assert r.status_code == 403


def test_a_post_without_the_session_token_is_refused(web: Web) -> None:
    normal_id, _, _ = _ids(web)
    op = web.client("dai-yty")
    r = op.post("/communes/02641/decisions", data={"csrf_token": "forged", "bulletin": str(normal_id),
                                                   "decision": "accepted"})  # fmt: skip
    assert r.status_code == 403
    assert decision_store.decisions(web.db) == {}


def test_the_pull_api_lists_and_records_decisions_with_the_endpoints_token(web: Web) -> None:
    normal_id, prio_id, other_id = _ids(web)
    add_token(web.db, "endpoint", "y-ty-loa", "tok-y-ty")
    anon = web.client()
    assert anon.get("/api/v1/endpoints/y-ty-loa/bulletins").status_code == 401
    assert anon.post("/api/v1/endpoints/y-ty-loa/decisions", json={"bulletin": normal_id}).status_code == 401
    api = web.client()
    api.headers["Authorization"] = "Bearer tok-y-ty"
    listed = api.get("/api/v1/endpoints/y-ty-loa/bulletins").json()
    assert [(b["id"], b["tier"], b["decision"]) for b in listed] == [(normal_id, "normal", None)]
    today = dt.datetime.now(web.project.settings.tz).date()
    until = (today + dt.timedelta(days=2)).isoformat()
    r = api.post("/api/v1/endpoints/y-ty-loa/decisions", json={"bulletin": normal_id, "decision": "deferred",
                                                                 "until": until, "reason": "chờ họp"})  # fmt: skip
    assert r.status_code == 200
    assert r.json()["decision"] | {"decided_at": None} == {
        "decision": "deferred",
        "until": until,
        "reason": "chờ họp",
        "by": "endpoint:y-ty-loa",
        "decided_at": None,
    }
    assert api.get("/api/v1/endpoints/y-ty-loa/bulletins").json()[0]["decision"]["decision"] == "deferred"
    bad = api.post("/api/v1/endpoints/y-ty-loa/decisions", json={"bulletin": normal_id, "decision": "declined"})
    assert bad.status_code == 400 and "hãy ghi lý do từ chối" in bad.json()["detail"]
    assert api.post("/api/v1/endpoints/y-ty-loa/decisions", content=b"not json").status_code == 400
    accept_other = {"bulletin": other_id, "decision": "accepted"}
    assert api.post("/api/v1/endpoints/y-ty-loa/decisions", json=accept_other).status_code == 404
    # a token of one endpoint decides nothing for another
    assert api.post("/api/v1/endpoints/ban-lau-loa/decisions", json=accept_other).status_code == 404
    assert prio_id not in [b["id"] for b in listed]


def test_the_build_plan_honours_stored_decisions(web: Web) -> None:
    normal_id, _, _ = _ids(web)
    settings, deployment = web.project.settings, web.project.deployment
    y_ty = deployment.commune("02641")
    assert y_ty is not None
    today = dt.datetime.now(settings.tz).date()
    slot = y_ty.slots[0].name
    day = next(today + dt.timedelta(days=i) for i in range(1, 8) if y_ty.slots[0].runs_on(today + dt.timedelta(days=i)))
    producer = Producer(settings=settings, deployment=deployment, db=web.db)
    plan, _ = producer.preview_script(day, y_ty, slot)
    assert plan is not None and normal_id in [i.bulletin.id for i in plan.items]
    decision_store.save_decision(web.db, Decision(normal_id, "02641", "declined", None, "không phù hợp", "user:x"))
    plan, _ = producer.preview_script(day, y_ty, slot)
    assert plan is not None and normal_id not in [i.bulletin.id for i in plan.items]
    assert [d.reason for d in plan.deferred if d.bulletin.id == normal_id] == [
        "declined by the commune (user:x): không phù hợp"
    ]
    assert bulletin_store.get_bulletin(web.db, normal_id).status == "approved"
