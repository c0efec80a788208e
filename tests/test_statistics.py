"""Statistics pieces: periods, tier grouping, the push's settings, the SVG chart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import SecretStr

from pipeline.config import ReportSettings, load_settings
from pipeline.errors import ConfigError
from pipeline.reconcile import NOT_PLAYED, PLAYED, Line, tier_of
from pipeline.statistics import group_lines, month_of, push_report, quarter_of, report_token
from pipeline.web.charts import Bar, bar_chart


def line(day: dt.date, status: str, *, commune: str = "02641", bulletin: int = 1) -> Line:
    return Line(
        commune=commune,
        date=day,
        slot="morning",
        program=f"{commune}/{day}/morning",
        bulletin_id=bulletin,
        title="t",
        tier=tier_of("routine"),
        category="policy",
        languages=("vi",),
        duration_ms=60000,
        language_ms=(("vi", 60000, 60000 if status == PLAYED else 0),),
        delivered="delivered",
        status=status,
        played_ms=60000 if status == PLAYED else 0,
    )


def test_periods_and_quarters() -> None:
    assert month_of(dt.date(2026, 3, 31)) == "2026-03" and quarter_of(dt.date(2026, 3, 31)) == "2026-Q1"
    assert quarter_of(dt.date(2026, 4, 1)) == "2026-Q2" and quarter_of(dt.date(2026, 12, 1)) == "2026-Q4"


def test_a_quarter_adds_its_months() -> None:
    lines = [
        line(dt.date(2026, 10, 5), PLAYED),
        line(dt.date(2026, 11, 5), NOT_PLAYED, bulletin=2),
        line(dt.date(2026, 11, 6), PLAYED, commune="02695"),
    ]
    rows = {(r.period, r.dimension, r.value): r for r in group_lines(lines)}
    q = rows[("2026-Q4", "all", "all")]
    assert (q.bulletins, q.items_scheduled, q.items_played, q.coverage) == (2, 3, 2, round(2 / 3, 4))
    assert rows[("2026-11", "commune", "02695")].items_played == 1
    assert rows[("2026-10", "tier", "normal")].ms_played == 60000
    assert ("2026-10", "commune", "02695") not in rows


def test_tier_of_maps_old_names_and_keeps_new_ones() -> None:
    assert [tier_of(p) for p in ("routine", "urgent", "emergency")] == ["normal", "priority", "emergency"]
    assert [tier_of(p) for p in ("normal", "priority")] == ["normal", "priority"]


def test_push_needs_https_a_url_and_a_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="push_url is not set"):
        push_report(b"{}", ReportSettings())
    with pytest.raises(ConfigError, match="use https"):
        push_report(b"{}", ReportSettings(push_url="http://127.0.0.1:9/x", token=SecretStr("t")))
    with pytest.raises(ConfigError, match="no token"):
        push_report(b"{}", ReportSettings(push_url="https://127.0.0.1:9/x"))
    (tmp_path / "tok").write_text("  tu-file \n")
    assert report_token(ReportSettings(token_file=tmp_path / "tok")) == "tu-file"
    with pytest.raises(ConfigError, match="token_file"):
        report_token(ReportSettings(token_file=tmp_path / "missing"))


def test_the_token_comes_from_the_environment_and_is_not_shown(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"LOA_REPORT__TOKEN": "bi-mat-x"})
    assert report_token(settings.report) == "bi-mat-x"
    assert "bi-mat-x" not in repr(settings)


def test_chart_escapes_labels_and_draws_parts() -> None:
    svg = str(bar_chart("Tỷ lệ", [Bar("<b>Y Tý</b>", 4, 3, "3/4"), Bar("Bản Lầu", 2, 0, "0/2")]))
    assert svg.startswith("<svg") and "<b>" not in svg and "&lt;b&gt;Y Tý&lt;/b&gt;" in svg
    assert svg.count("<rect") == 4 and "style=" not in svg and "<script" not in svg
    assert "Chưa có số liệu." in str(bar_chart("x", []))
