"""Operators' reports: only for a program that exists, of their commune, whose slot has started."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest

from pipeline import manifest as mf
from pipeline.broadcast import operator_reports
from pipeline.package import manifest_path
from pipeline.store.receipts import count_receipts, receipts_between
from pipeline.store.users import play_reports
from tests.web_support import Web, csrf_of


def fake_program(web: Web, day: dt.date, slot: str, start: dt.datetime, code: str = "02641") -> str:
    """A built program in the commune's outbox (its manifest only; the page and the rule read nothing else)."""
    folder = f"programs/{day.isoformat()}"
    pid = f"{code}/{day.isoformat()}/{slot}"
    entry = mf.ProgramEntry(
        id=pid,
        kind="program",
        slot=slot,
        start=start,
        priority="normal",
        valid_until=day,
        duration_ms=60_000,
        items=(),
    )
    manifest = mf.Manifest(
        endpoint="y-ty-loa",
        format="playlist",
        commune=code,
        commune_name="Y Tý",
        folder=folder,
        timezone="Asia/Ho_Chi_Minh",
        valid_until=start + dt.timedelta(days=2),
        programs=(entry,),
        files=(),
        date=day,
    )
    path = manifest_path(web.project.settings.outbox_dir, code, folder, "y-ty-loa")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(manifest.to_bytes())
    return pid


def _post(op: httpx.Client, token: str, program: str, kind: str = "played") -> httpx.Response:
    return op.post("/communes/02641/reports", data={"csrf_token": token, "kind": kind, "program": program})


def test_only_a_started_program_of_ones_commune_can_be_reported(web: Web) -> None:
    tz = web.project.settings.tz
    now = dt.datetime.now(tz)
    today, tomorrow = now.date(), now.date() + dt.timedelta(days=1)
    started = fake_program(web, today, "morning", now - dt.timedelta(minutes=1))
    later = fake_program(web, tomorrow, "morning", dt.datetime.combine(tomorrow, dt.time(5, 30), tzinfo=tz))
    op = web.client("dai-yty")
    page = op.get("/communes/02641").text
    token = csrf_of(page)
    # the buttons: for the started program only
    reportable = set(re.findall(r'name="program" value="([^"]+)"', page))
    assert reportable == {started}
    assert "hiện khi đến giờ phát (05:30)" in page

    refused = {
        later: (400, "chưa đến giờ phát (05:30 ngày"),  # tomorrow's slot has not started
        f"02641/{(today + dt.timedelta(days=183)).isoformat()}/morning": (400, "chưa đến giờ phát"),  # six months
        f"02641/{today.isoformat()}/noon": (404, "Xã không có buổi phát «noon»"),  # no such slot
        f"02641/{(today - dt.timedelta(days=1)).isoformat()}/morning": (404, "Chưa có chương trình này"),  # not built
        f"02695/{today.isoformat()}/morning": (400, "không phải của xã này"),  # another commune's
        "02641/khong-phai-ngay/morning": (404, "Xã không có buổi phát"),
    }
    for program, (status, words) in refused.items():
        r = _post(op, token, program)
        assert r.status_code == status, (program, r.text)
        assert words in r.text, (program, r.text)
    assert _post(op, token, started, kind="listened").status_code == 400
    assert play_reports(web.db, "02641") == [] and count_receipts(web.db) == 0

    assert _post(op, token, started).status_code == 303
    [report] = play_reports(web.db, "02641")
    assert (report.program, report.kind, report.user) == (started, "played", "dai-yty")
    [receipt] = receipts_between(web.db, today - dt.timedelta(days=1), today + dt.timedelta(days=1))
    assert receipt.program == started and receipt.source == "web"


def test_the_rule_takes_the_slot_start_from_the_built_program(web: Web) -> None:
    settings, tz = web.project.settings, web.project.settings.tz
    y_ty = web.project.deployment.commune("02641")
    assert y_ty is not None
    day = dt.datetime.now(tz).date()
    start = dt.datetime.combine(day, dt.time(5, 30), tzinfo=tz)
    pid = fake_program(web, day, "morning", start)
    with pytest.raises(operator_reports.ReportRefused) as err:
        operator_reports.check_report(
            settings, y_ty, program_id=pid, kind="played", now=start - dt.timedelta(seconds=1)
        )
    assert err.value.code == "report.not_started"
    ok = operator_reports.check_report(settings, y_ty, program_id=pid, kind="problem", now=start)
    assert ok.id == pid
