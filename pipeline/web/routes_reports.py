"""The staff's proof-of-play page: not played, played but not scheduled, silent devices, statistics."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pipeline import labels
from pipeline.broadcast.coverage import ALL, CoverageRow, rows_of
from pipeline.broadcast.reconcile import Reconciliation, reconcile
from pipeline.broadcast.statistics import (
    DIMENSIONS,
    Row,
    Statistics,
    compute_statistics,
    coverage_csv,
    statistics_csv,
    to_json,
)
from pipeline.models import LANGUAGES
from pipeline.store import devices as device_store
from pipeline.voices import placeholder_keys
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
    placeholders = placeholder_keys(state.settings, state.db)
    return rec, compute_statistics(rec, state.db, state.deployment, tz=state.settings.tz, placeholders=placeholders)


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


def _period_vi(period: str) -> str:
    if "-W" in period:
        return f"Tuần {int(period[6:])}/{period[:4]}"
    return f"Tháng {period[5:]}/{period[:4]}"


def _coverage(rows: list[CoverageRow], names: dict[str, str]) -> dict[str, Any]:
    """The chart (share of required airings that carried each language) and the table of one period."""

    def label(r: CoverageRow) -> str:
        lang = "Mọi ngôn ngữ" if r.language == ALL else LANGUAGES.get(r.language, r.language)
        return f"{names.get(r.commune, r.commune)} — {lang}"

    wanted = [r for r in rows if r.airings_required]
    chart = bar_chart(
        "Số lượt phát có ngôn ngữ trên số lượt phải có",
        [
            Bar(
                label(r),
                r.airings_required,
                r.airings_required - r.airings_skipped,
                f"{r.airings_required - r.airings_skipped}/{r.airings_required} ({round((r.share or 0) * 100)} %)",
            )
            for r in wanted
        ],
    )
    return {"chart": chart, "rows": [(r, label(r)) for r in rows]}


@router.get("/reports")
def reports_page(request: Request, who: Reader, span: QueryRange) -> Response:
    state = web_state(request)
    rec, stats = _compute(request, who, span)
    names = {c.code: c.name for c in state.deployment.communes}
    periods = sorted({r.period for r in stats.rows}, key=lambda p: (p[:4], "-Q" not in p, p))
    period = request.query_params.get("period") or next((p for p in periods if "-Q" in p), "")
    rows = [r for r in stats.rows if r.period == period]
    coverage_periods = list(dict.fromkeys(r.period for r in stats.coverage))
    wanted = request.query_params.get("coverage")
    coverage_period = (
        wanted if wanted in coverage_periods else next((p for p in reversed(coverage_periods) if "-W" not in p), "")
    )
    return render(
        request,
        "reports.html",
        rec=rec,
        stats=stats,
        names=names,
        periods=periods,
        period=period,
        charts=_charts(rows, names),
        coverage_periods=coverage_periods,
        coverage_period=coverage_period,
        coverage=_coverage(rows_of(stats.coverage, coverage_period), names),
        period_vi=_period_vi,
        dimensions=DIMENSIONS,
        DIMENSION_VI=DIMENSION_VI,
        DELIVERED_VI=DELIVERED_VI,
        SOURCE_VI=SOURCE_VI,
        reason_vi=reason_vi,
        devices=device_store.devices(state.db),
        tz=state.settings.tz,
    )


def _download(stats: Statistics, body: bytes, media_type: str, ending: str) -> Response:
    """``body`` as a file named for the period: ``loa-<start>_<end><ending>``."""
    name = f"loa-{stats.start.isoformat()}_{stats.end.isoformat()}{ending}"
    return Response(body, media_type=media_type, headers={"content-disposition": f'attachment; filename="{name}"'})


@router.get("/reports/export.json")
def export_json(request: Request, who: Reader, span: QueryRange) -> Response:
    _, stats = _compute(request, who, span)
    return _download(stats, to_json(stats), "application/json", ".json")


@router.get("/reports/export.csv")
def export_csv(request: Request, who: Reader, span: QueryRange) -> Response:
    _, stats = _compute(request, who, span)
    return _download(stats, statistics_csv(stats), "text/csv; charset=utf-8", "-statistics.csv")


@router.get("/reports/coverage.csv")
def export_coverage(request: Request, who: Reader, span: QueryRange) -> Response:
    _, stats = _compute(request, who, span)
    return _download(stats, coverage_csv(stats), "text/csv; charset=utf-8", "-coverage.csv")
