"""Consultations for culture-center staff: list, summary with charts, moderation, exports,
the printable report for the drafting agency, the follow-up bulletin, the policy timeline.

Every route needs an editor, approver or admin whose scope reaches the campaign's
communes (404 otherwise). Phone numbers are shown in full only to approvers and admins.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from pipeline import lifecycle
from pipeline.errors import LoaError, NotFoundError, UsageError
from pipeline.feedback import export as export_fmt
from pipeline.feedback.consultation import CHANNEL_VI, YESNO_VI, make_followup, shown_phone, summarize
from pipeline.lifecycle import reads as bulletin_store
from pipeline.messages import vietnamese
from pipeline.models import LANGUAGES, Consultation
from pipeline.store import consultations as store
from pipeline.web.auth import Authed, Reader, check_csrf, may_see_bulletin
from pipeline.web.charts import count_chart
from pipeline.web.outbox import confined
from pipeline.web.pages import render
from pipeline.web.state import WebState, web_state

router = APIRouter(include_in_schema=False)
STAGE_VI = {"draft": "Dự thảo, lấy ý kiến", "promulgated": "Đã ban hành", "guidance": "Hướng dẫn thực hiện"}
NOTICES_VI = {
    "hide": "Đã ẩn ý kiến.",
    "show": "Đã hiện lại ý kiến.",
    "topic": "Đã gắn chủ đề.",
    "merge": "Đã gộp ý kiến trùng.",
}


def visible_campaign(state: WebState, who: Authed, consultation_id: int) -> Consultation:
    try:
        c = store.get_campaign(state.db, consultation_id)
        b = bulletin_store.get_bulletin(state.db, c.bulletin_id)
    except NotFoundError as exc:
        raise HTTPException(404, "Không tìm thấy đợt lấy ý kiến này.") from exc
    if not may_see_bulletin(who.user, b, state.deployment):
        raise HTTPException(404, "Không tìm thấy đợt lấy ý kiến này.")
    return c


def visible_policies(state: WebState, who: Authed) -> list[str]:
    """Policies with at least one bulletin within the user's scope."""
    return [
        name
        for name in store.policies(state.db)
        if any(may_see_bulletin(who.user, b, state.deployment) for b in store.policy_bulletins(state.db, name))
    ]


def _charts(summary: Any) -> dict[str, Any]:
    return {
        "questions": [count_chart(q.counts, title=f"Câu {q.number}") for q in summary.questions],
        "commune": count_chart(summary.by_commune, title="Theo xã"),
        "language": count_chart(summary.by_language, title="Theo ngôn ngữ"),
        "channel": count_chart(summary.by_channel, title="Theo kênh"),
    }


@router.get("/consultations")
def list_page(request: Request, who: Reader) -> Response:
    state = web_state(request)
    rows = []
    for c in store.list_campaigns(state.db):
        b = bulletin_store.get_bulletin(state.db, c.bulletin_id)
        if may_see_bulletin(who.user, b, state.deployment):
            rows.append((c, store.count_answers(state.db, c.id)))
    return render(request, "consultations.html", rows=rows, policies=visible_policies(state, who))


@router.get("/consultations/{consultation_id}")
def campaign_page(request: Request, consultation_id: int, who: Reader) -> Response:
    state = web_state(request)
    c = visible_campaign(state, who, consultation_id)
    answers = store.list_answers(state.db, c.id)
    summary = summarize(c, answers, state.deployment)
    names = {x.code: x.name for x in state.deployment.communes}
    return render(
        request,
        "consultation.html",
        c=c,
        answers=answers,
        summary=summary,
        charts=_charts(summary),
        names=names,
        phone=lambda p: shown_phone(p, who.user.role),
        YESNO_VI=YESNO_VI,
        CHANNEL_VI=CHANNEL_VI,
        LANGS=LANGUAGES,
        tz=state.settings.tz,
        notice_text=NOTICES_VI.get(request.query_params.get("ok", "")),
        public_path=f"/y-kien/{c.spec.code}",
    )


@router.post("/consultations/{consultation_id}/answers/{answer_id}", dependencies=[Depends(check_csrf)])
async def moderate(request: Request, consultation_id: int, answer_id: int, who: Reader) -> Response:
    state = web_state(request)
    c = visible_campaign(state, who, consultation_id)
    form = await request.form()
    action = str(form.get("action", ""))
    try:
        if action == "hide":
            store.moderate(state.db, c.id, answer_id, hidden=True, by=who.user.name)
        elif action == "show":
            store.moderate(state.db, c.id, answer_id, hidden=False, by=who.user.name)
        elif action == "topic":
            store.moderate(state.db, c.id, answer_id, topic=str(form.get("topic", "")), by=who.user.name)
        elif action == "merge":
            into = str(form.get("into", "")).strip().lstrip("#")
            if not into.isdigit():
                raise UsageError("Hãy ghi số của ý kiến cần gộp vào, ví dụ 12.")
            store.moderate(state.db, c.id, answer_id, merged_into=int(into), by=who.user.name)
        else:
            raise HTTPException(400, "Không rõ việc cần làm.")
    except NotFoundError as exc:
        raise HTTPException(404, "Không tìm thấy ý kiến này.") from exc
    except UsageError as exc:
        raise HTTPException(400, vietnamese(exc)) from exc
    return RedirectResponse(f"/consultations/{c.id}?ok={action}#a{answer_id}", status_code=303)


@router.get("/consultations/{consultation_id}/answers/{answer_id}/voice")
def voice_message(request: Request, consultation_id: int, answer_id: int, who: Reader) -> Response:
    """A village meeting's voice message (WAV), until retention erases it."""
    state = web_state(request)
    c = visible_campaign(state, who, consultation_id)
    try:
        a = store.get_answer(state.db, c.id, answer_id)
    except NotFoundError as exc:
        raise HTTPException(404, "Không tìm thấy ý kiến này.") from exc
    found = confined(state.settings.data_dir, a.recording) if a.recording else None
    if found is None:
        raise HTTPException(404, "Ý kiến này không có ghi âm (hoặc đã bị xóa theo thời hạn lưu giữ).")
    return FileResponse(found, media_type="audio/wav", headers={"Cache-Control": "no-store"})


@router.get("/consultations/{consultation_id}/export.{fmt}")
def export(request: Request, consultation_id: int, fmt: str, who: Reader) -> Response:
    state = web_state(request)
    c = visible_campaign(state, who, consultation_id)
    if fmt not in ("csv", "xlsx"):
        raise HTTPException(404, "Chỉ xuất được CSV hoặc XLSX.")
    answers = store.list_answers(state.db, c.id)
    full = shown_phone("0000000000", who.user.role) == "0000000000"
    rows = export_fmt.answer_rows(c, answers, state.deployment, timezone=state.settings.timezone, phones=full)
    name = f"y-kien-{c.spec.code}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    if fmt == "csv":
        return Response(export_fmt.to_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)
    data = export_fmt.to_xlsx(export_fmt.summary_rows(c, summarize(c, answers, state.deployment)), rows)
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(data, media_type=media, headers=headers)


@router.get("/consultations/{consultation_id}/report")
def report(request: Request, consultation_id: int, who: Reader) -> Response:
    state = web_state(request)
    c = visible_campaign(state, who, consultation_id)
    answers = store.list_answers(state.db, c.id)
    summary = summarize(c, answers, state.deployment)
    return render(
        request,
        "consultation_report.html",
        c=c,
        summary=summary,
        charts=_charts(summary),
        made=dt.datetime.now(state.settings.tz),
    )


@router.post("/consultations/{consultation_id}/agency-answer", dependencies=[Depends(check_csrf)])
async def agency_answer(request: Request, consultation_id: int, who: Reader) -> Response:
    """The agency's answer → a follow-up draft bulletin to the same communes, through intake."""
    state = web_state(request)
    c = visible_campaign(state, who, consultation_id)
    if who.user.role not in lifecycle.WHO["submit"]:
        raise HTTPException(403, "Tài khoản của bạn không có quyền làm việc này.")
    form = await request.form()
    today = dt.datetime.now(state.settings.tz).date()
    actor = lifecycle.web_user(who.user, state.deployment)
    try:
        bid = make_followup(state.db, state.deployment, c, str(form.get("answer", "")), today=today, actor=actor)
    except LoaError as exc:
        raise HTTPException(400, vietnamese(exc)) from exc
    return RedirectResponse(f"/bulletins/{bid}?ok=added", status_code=303)


@router.get("/policies")
def policy_page(request: Request, who: Reader, name: str = "") -> Response:
    """A policy's timeline: its bulletins by stage, what aired where and in which languages,
    what people said, and the agency's answer."""
    state = web_state(request)
    names = visible_policies(state, who)
    if not name:
        return render(request, "policies.html", names=names, policy="", stages=[], STAGE_VI=STAGE_VI)
    bulletins = [b for b in store.policy_bulletins(state.db, name) if may_see_bulletin(who.user, b, state.deployment)]
    if not bulletins:
        raise HTTPException(404, "Không tìm thấy chính sách này.")
    airings = store.airings(state.db, [b.id for b in bulletins if b.id is not None])
    campaigns = {c.bulletin_id: c for c in store.list_campaigns(state.db)}
    communes = {x.code: x.name for x in state.deployment.communes}
    stages = []
    for b in bulletins:
        c = campaigns.get(b.id or 0)
        summary = summarize(c, store.list_answers(state.db, c.id), state.deployment) if c else None
        stages.append(
            {
                "bulletin": b,
                "airings": [a for a in airings if a["bulletin_id"] == b.id],
                "campaign": c,
                "summary": summary,
                "communes": [communes.get(x.code, x.code) for x in state.deployment.targeted(b.targets)],
            }
        )
    return render(request, "policies.html", names=names, policy=name, stages=stages, STAGE_VI=STAGE_VI)
