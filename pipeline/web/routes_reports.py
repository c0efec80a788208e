"""The staff's proof-of-play page: not played, played but not scheduled, silent devices, statistics."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pipeline import labels
from pipeline.broadcast.reconcile import Reconciliation, reconcile
from pipeline.broadcast.statistics import DIMENSIONS, Row, Statistics, compute_statistics, statistics_csv, to_json
from pipeline.models import LANGUAGES
from pipeline.store import devices as device_store
from pipeline.web.auth import Reader, scope_communes
from pipeline.web.charts import Bar, bar_chart
from pipeline.web.pages import render
from pipeline.web.params import DayRange, QueryRange
from pipeline.web.state import web_state

router = APIRouter(include_in_schema=False)

DIMENSION_VI = {
    "all": "Tổng",
    "tier": "Theo mức",
    "language": "Theo ngôn ngữ",
    "commune": "Theo xã",
    "topic": "Theo chủ đề",
}
DELIVERED_VI = {
    "delivered": "Đã gửi",
    "pulled": "Thiết bị đã tải",
    "receipt": "Có biên nhận",
    "not delivered": "Chưa gửi tới",
}
REASON_VI = {
    "no receipt": "Chưa có biên nhận",
    "the receipts do not list it": "Biên nhận không có mục này",
    "not delivered": "Chưa gửi tới thiết bị",
    "no such program was built": "Không có chương trình này trong lịch",
    "bulletin not in this program": "Bản tin không có trong chương trình này",
    "file not in this program": "Tệp không có trong chương trình này",
    "file missing on the device": "Thiếu tệp trên thiết bị",
    "file does not match the manifest's SHA-256": "Tệp hỏng (sai mã SHA-256)",
}
SOURCE_VI = {"pull": "thiết bị tải về", "sftp": "thiết bị SFTP", "web": "đài xã bấm nút"}


def reason_vi(reason: str | None) -> str:
    """A reason in Vietnamese: known ones translated, the device's or operator's own words kept."""
    if not reason:
        return ""
    if reason.startswith("web:") and ": " in reason:
        reason = "Đài xã báo: " + reason.split(": ", 1)[1]
    for key, vi in REASON_VI.items():
        if reason == key or reason.startswith(key + " ("):
            return vi + reason[len(key) :]
        if reason.endswith(": " + key):
            return reason[: -len(key)] + vi
    return reason


def _compute(request: Request, who: Any, span: DayRange) -> tuple[Reconciliation, Statistics]:
    state = web_state(request)
    today = dt.datetime.now(state.settings.tz).date()
    start, end = span.or_default(today.replace(day=1), today)
    mine = scope_communes(who.user, state.deployment)
    rec = reconcile(state.db, state.deployment, start, end, communes=mine, tz=state.settings.tz)
    return rec, compute_statistics(rec, state.db, state.deployment, tz=state.settings.tz)


def _value_vi(dimension: str, value: str, names: dict[str, str]) -> str:
    if dimension == "tier":
        return labels.label(labels.TIER, value)
    if dimension == "language":
        return LANGUAGES.get(value, value)
    if dimension == "commune":
        return names.get(value, value)
    if dimension == "topic":
        return labels.label(labels.CATEGORY, value)
    return "Tất cả"


def _charts(rows: list[Row], names: dict[str, str]) -> dict[str, Any]:
    out = {}
    for dim in DIMENSIONS:
        mine = [r for r in rows if r.dimension == dim]
        out[dim] = {
            "coverage": bar_chart(
                f"Tỷ lệ đã phát — {DIMENSION_VI[dim]}",
                [
                    Bar(
                        _value_vi(dim, r.value, names),
                        r.items_scheduled,
                        r.items_played,
                        f"{r.items_played}/{r.items_scheduled} ({round((r.coverage or 0) * 100)} %)",
                    )
                    for r in mine
                ],
            ),
            "minutes": bar_chart(
                f"Số phút — {DIMENSION_VI[dim]}",
                [
                    Bar(
                        _value_vi(dim, r.value, names),
                        r.ms_scheduled / 60000,
                        r.ms_played / 60000,
                        f"{r.ms_played / 60000:.1f} / {r.ms_scheduled / 60000:.1f} phút",
                    )
                    for r in mine
                ],
            ),
            "rows": [(r, _value_vi(dim, r.value, names)) for r in mine],
        }
    return out


@router.get("/reports")
def reports_page(request: Request, who: Reader, span: QueryRange) -> Response:
    state = web_state(request)
    rec, stats = _compute(request, who, span)
    names = {c.code: c.name for c in state.deployment.communes}
    periods = sorted({r.period for r in stats.rows}, key=lambda p: (p[:4], "-Q" not in p, p))
    period = request.query_params.get("period") or next((p for p in periods if "-Q" in p), "")
    rows = [r for r in stats.rows if r.period == period]
    return render(
        request,
        "reports.html",
        rec=rec,
        stats=stats,
        names=names,
        periods=periods,
        period=period,
        charts=_charts(rows, names),
        dimensions=DIMENSIONS,
        DIMENSION_VI=DIMENSION_VI,
        DELIVERED_VI=DELIVERED_VI,
        SOURCE_VI=SOURCE_VI,
        reason_vi=reason_vi,
        devices=device_store.devices(state.db),
        tz=state.settings.tz,
    )


@router.get("/reports/export.json")
def export_json(request: Request, who: Reader, span: QueryRange) -> Response:
    _, stats = _compute(request, who, span)
    name = f"loa-{stats.start.isoformat()}_{stats.end.isoformat()}.json"
    return Response(
        to_json(stats), media_type="application/json", headers={"content-disposition": f'attachment; filename="{name}"'}
    )


@router.get("/reports/export.csv")
def export_csv(request: Request, who: Reader, span: QueryRange) -> Response:
    _, stats = _compute(request, who, span)
    name = f"loa-{stats.start.isoformat()}_{stats.end.isoformat()}-statistics.csv"
    return Response(
        statistics_csv(stats),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )
