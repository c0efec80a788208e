"""Helpers for the agency API and publishing tests: agencies, bulletin files, built days."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from pipeline.config import Settings
from pipeline.intake import parse_bulletin
from pipeline.models import Deployment
from pipeline.store import Database
from pipeline.store import bulletins as bulletin_store
from pipeline.store.agencies import add_agency
from pipeline.store.tokens import create_agency_token
from tests.conftest import Project
from tests.web_support import small_project

EVERY_DAY = '{ name = "evening", start = "17:00", max_minutes = 10 },'


def publish_project(root: Path, voices: Path, *, segments: Path | None = None) -> Project:
    """The small two-commune project, with the evening slot on every day of the week."""
    project = small_project(root, voices, segments=segments)
    schedule = project.root / "schedules" / "small.toml"
    text = schedule.read_text(encoding="utf-8")
    evening = (
        '{ name = "evening", start = "17:00", max_minutes = 10, days = ["mon", "tue", "wed", "thu", "fri", "sat"] },'
    )
    assert evening in text
    schedule.write_text(text.replace(evening, EVERY_DAY), encoding="utf-8")
    return project


def make_agency(db: Database, name: str, scope: tuple[str, ...], title: str = "") -> str:
    """An agency with one live token; returns the token."""
    add_agency(db, name, title=title or f"Sở {name}", scope=scope)
    _, token = create_agency_token(db, name)
    return token


def bulletin_file(
    *,
    title: str = "Tiêm vắc-xin sởi cho trẻ dưới 5 tuổi",
    source: str = "Sở Y tế Lào Cai",
    targets: list[str] | None = None,
    start: dt.date,
    end: dt.date,
    priority: str = "routine",
    category: str = "notice",
    languages: list[str] | None = None,
    public: bool | None = None,
    body: str = "Trạm y tế xã tiêm vắc-xin sởi miễn phí cho trẻ dưới 5 tuổi vào sáng thứ bảy.",
) -> str:
    lines = [
        "+++",
        f"title = {json.dumps(title, ensure_ascii=False)}",
        f'category = "{category}"',
        f'priority = "{priority}"',
        f"source = {json.dumps(source, ensure_ascii=False)}",
        'reference = "Công văn số 158/SYT-NVY"',
        f"valid_from = {start.isoformat()}",
        f"valid_until = {end.isoformat()}",
        f"targets = {json.dumps(targets or ['all'])}",
        f"languages = {json.dumps(languages or ['vi'])}",
    ]
    if public is not None:
        lines.append(f"public = {'true' if public else 'false'}")
    return "\n".join([*lines, "+++", body]) + "\n"


def store_bulletin(db: Database, deployment: Deployment, text: str, *, approve: bool = True) -> int:
    [(b, _)] = bulletin_store.save_bulletins(db, [parse_bulletin(text, where="t.md", deployment=deployment).bulletin])
    assert b.id is not None
    if approve:
        bulletin_store.approve(db, b.id, by="test")
    return b.id


def build(project: Project, db: Database, day: dt.date) -> None:
    """``loa build --date DAY`` through the same function the CLI calls."""
    from pipeline.nightly import build_day

    report = build_day(day, settings=project.settings, deployment=project.deployment, db=db)
    assert not report.failures, report.failures


def local_today(settings: Settings) -> dt.date:
    return dt.datetime.now(settings.tz).date()
