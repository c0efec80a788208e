"""Coverage by law and by commune: the figures of ``loa report`` equal a week counted by hand.

Communes: Y Tý (vi, hmn), Trịnh Tường (vi, ium), Bản Lầu (vi).
Bulletins: b1 vi · b2 vi + hmn (a Mông reading) · b3 vi + ium (no Dao reading).
Segments:  ph hmn/greeting placeholder clip 4 s · pi ium/greeting recorded clip 5 s · g vi greeting 6 s
           s1 b1 vi 60 s · s2v b2 vi 120 s · s2h b2 hmn reading 60 s · s3v b3 vi 30 s
Programs (ISO week 49 is 30/11–6/12/2026):
  P1 Y Tý 30/11        [ph g s1 s2v s2h]  delivered  b1: hmn skipped · b2: vi, hmn
  P2 Y Tý 01/12        [ph g s1 s3v]      delivered  b1: hmn skipped · b3: hmn skipped
  P3 Y Tý 07/12 (W50)  [ph g s2v s2h]     delivered  b2: vi, hmn
  P4 Trịnh Tường 02/12 [pi g s3v]         delivered  b3: ium skipped
  P5 Bản Lầu 02/12     [g s1]             push failed: did not air, counts nowhere
Week 49, Y Tý:   vi  required 4, skipped 0, minutes 2·6+2·60+120+30 s = 4.7
                 hmn required 4, skipped 3, read 1 (b2), placeholders 2, minutes 2·4+60 s = 1.13
                 all required 8, skipped 3 → share 5/8; languages covered 1 of 2
Week 49, Trịnh Tường: vi 1/0 (0.6 min) · ium 1/1 (0.08 min), share 0 · all 2/1, covered 1 of 2
December, Y Tý hmn: required 3 (P2 ×2, P3), skipped 2, read 1, placeholders 2 (P2, P3), minutes 4+4+60 s = 1.13
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from pipeline.cli import main
from pipeline.intake import parse_bulletin
from pipeline.models import Delivery, Program, Segment
from pipeline.store import bulletins as bulletin_store
from pipeline.store import runs as run_store
from tests.conftest import REPO, Project

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DEPLOYMENT = """
timezone = "Asia/Ho_Chi_Minh"
[defaults]
slots = [{ name = "morning", start = "05:30", max_minutes = 10 }]
"""
COMMUNES = (
    ("02641", "Y Tý", '["vi", "hmn"]'),
    ("02710", "Trịnh Tường", '["vi", "ium"]'),
    ("02695", "Bản Lầu", '["vi"]'),
)
CATALOG = """
[[clip]]
key = "hmn/greeting"
language = "hmn"
file = "hmn/greeting.wav"
translation = "Xin chào bà con"
placeholder = true

[[clip]]
key = "ium/greeting"
language = "ium"
file = "ium/greeting.wav"
speaker = "Bàn Thị Mây"
translation = "Xin chào bà con"
"""
BULLETIN = """+++
title = "{title}"
category = "notice"
priority = "routine"
source = "UBND tỉnh"
reference = ""
valid_from = 2026-11-01
valid_until = 2026-12-31
targets = ["all"]
languages = {languages}
+++
Nội dung.
"""


def _segment(root: Path, name: str, ms: int, lang: str, bulletin: int | None, kind: str, title: str = "") -> Segment:
    path = root / "segs" / f"{name}.mp3"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f"fake audio {name}".encode())
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return Segment(name, path, ms, kind, lang, title or name, path.stat().st_size, sha, bulletin_id=bulletin)


@pytest.fixture
def week(tmp_path: Path) -> Project:
    root = tmp_path / "p"
    (root / "schedules").mkdir(parents=True)
    toml = DEPLOYMENT + "".join(
        f'\n[[commune]]\ncode = "{code}"\nname = "{name}"\nlanguages = {langs}\n'
        f'  [[commune.endpoint]]\n  name = "{code}-loa"\n  transport = "local"\n  path = "endpoints/{code}"\n'
        for code, name, langs in COMMUNES
    )
    (root / "schedules" / "d.toml").write_text(toml, encoding="utf-8")
    (root / "voices").mkdir()
    (root / "voices" / "catalog.toml").write_text(CATALOG, encoding="utf-8")
    (root / "loa.toml").write_text(f'data_dir = "data"\ntemplates_dir = "{REPO / "templates"}"\n', encoding="utf-8")
    project = Project(root=root, config=root / "loa.toml")
    db = project.db()
    ids = {}
    for key, languages in (("b1", '["vi"]'), ("b2", '["vi", "hmn"]'), ("b3", '["vi", "ium"]')):
        text = BULLETIN.format(title=f"Bản tin {key}", languages=languages)
        [(b, _)] = bulletin_store.save_bulletins(
            db, [parse_bulletin(text, where=key, deployment=project.deployment).bulletin]
        )
        assert b.id is not None
        bulletin_store.approve(db, b.id, by="test")
        ids[key] = b.id
    ph = _segment(root, "ph", 4000, "hmn", None, "clip", "Tiếng Mông: hmn/greeting")
    pi = _segment(root, "pi", 5000, "ium", None, "clip", "Tiếng Dao: ium/greeting")
    g = _segment(root, "g", 6000, "vi", None, "speech")
    s1 = _segment(root, "s1", 60000, "vi", ids["b1"], "speech")
    s2v = _segment(root, "s2v", 120000, "vi", ids["b2"], "speech")
    s2h = _segment(root, "s2h", 60000, "hmn", ids["b2"], "recording")
    s3v = _segment(root, "s3v", 30000, "vi", ids["b3"], "speech")
    run_store.record_segments(db, [ph, pi, g, s1, s2v, s2h, s3v])
    for commune, day, items, status in (
        ("02641", dt.date(2026, 11, 30), (ph, g, s1, s2v, s2h), "delivered"),
        ("02641", dt.date(2026, 12, 1), (ph, g, s1, s3v), "delivered"),
        ("02641", dt.date(2026, 12, 7), (ph, g, s2v, s2h), "delivered"),
        ("02710", dt.date(2026, 12, 2), (pi, g, s3v), "delivered"),
        ("02695", dt.date(2026, 12, 2), (g, s1), "failed"),
    ):
        start = dt.datetime.combine(day, dt.time(5, 30), tzinfo=TZ)
        pid = f"{commune}/{day.isoformat()}/morning"
        run_store.record_program(db, Program(pid, commune, day, "morning", start, "routine", day, items))
        at = (start - dt.timedelta(hours=6)).astimezone(dt.UTC)
        error = "Connection refused" if status == "failed" else None
        run_store.record_delivery(
            db, Delivery(f"{commune}-loa", commune, day.isoformat(), status, 1, error=error, finished_at=at)
        )
    db.close()
    return project


def test_coverage_equals_the_week_counted_by_hand(week: Project, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--config", str(week.config), "report", "--from", "2026-11-30", "--to", "2026-12-07", "--out", str(out)]
    assert main(args) == 0
    doc = json.loads((out / "loa-2026-11-30_2026-12-07.json").read_bytes())
    schema = json.loads((REPO / "schemas" / "report-2.schema.json").read_text())
    jsonschema.validate(doc, schema, format_checker=jsonschema.FormatChecker())
    assert doc["schema"] == "loa.report/2"
    got = {(r["period"], r["commune"], r["language"]): r for r in doc["coverage"]}

    def figures(period: str, commune: str, lang: str) -> tuple[object, ...]:
        r = got[(period, commune, lang)]
        return (
            r["bulletins_read"],
            r["airings_required"],
            r["airings_skipped"],
            r["placeholders_aired"],
            r["minutes_on_air"],
            r["share"],
            r["languages_covered"],
            r["languages_required"],
        )

    w = "2026-W49"
    assert figures(w, "02641", "vi") == (0, 4, 0, 0, 4.7, 1.0, 1, 1)
    assert figures(w, "02641", "hmn") == (1, 4, 3, 2, 1.13, 0.25, 0, 1)
    assert figures(w, "02641", "all") == (1, 8, 3, 2, 5.83, 0.625, 1, 2)
    assert figures(w, "02710", "vi") == (0, 1, 0, 0, 0.6, 1.0, 1, 1)
    assert figures(w, "02710", "ium") == (0, 1, 1, 0, 0.08, 0.0, 0, 1)
    assert figures(w, "02710", "all") == (0, 2, 1, 0, 0.68, 0.5, 1, 2)
    assert figures("2026-12", "02641", "hmn") == (1, 3, 2, 2, 1.13, round(1 / 3, 4), 0, 1)
    assert figures("2026-11", "02641", "hmn") == (1, 2, 1, 1, 1.07, 0.5, 0, 1)
    assert figures("2026-W50", "02641", "hmn") == (1, 1, 0, 1, 1.07, 1.0, 1, 1)
    assert not any(c == "02695" for _, c, _ in got)  # Bản Lầu's program never reached it: it did not air
    assert got[(w, "02641", "all")]["commune_name"] == "Y Tý"
    assert [k for k in got if k[:2] == (w, "02641")] == [(w, "02641", "all"), (w, "02641", "vi"), (w, "02641", "hmn")]

    with (out / "loa-2026-11-30_2026-12-07-coverage.csv").open(encoding="utf-8-sig") as f:
        table = {(r["period"], r["commune"], r["language"]): r for r in csv.DictReader(f)}
    assert table[(w, "02641", "hmn")]["airings_skipped"] == "3"
    assert table[(w, "02710", "ium")]["share"] == "0.0"
    assert table[(w, "02641", "all")]["commune_name"] == "Y Tý"


def test_the_page_and_its_csv_show_the_same_figures(week: Project, tmp_path: Path) -> None:
    from tests.web_support import make_user, serve_project

    out = tmp_path / "out"
    args = ["--config", str(week.config), "report", "--from", "2026-11-30", "--to", "2026-12-07", "--out", str(out)]
    assert main([*args, "--format", "csv"]) == 0
    db = week.db()
    make_user(db, "duyet", "approver")
    db.close()
    with serve_project(week) as web:
        client = web.client("duyet")
        page = client.get("/reports?from=2026-11-30&to=2026-12-07&coverage=2026-W49")
        assert page.status_code == 200
        assert "Phát bằng tiếng dân tộc theo từng xã" in page.text and "Tuần 49/2026" in page.text
        assert "Y Tý — Tiếng Mông" in page.text and "Trịnh Tường — Tiếng Dao" in page.text
        assert "5/8 (62 %)" in page.text  # Y Tý's airings that carried their language, of those required
        csv_bytes = client.get("/reports/coverage.csv?from=2026-11-30&to=2026-12-07").content
    assert csv_bytes == (out / "loa-2026-11-30_2026-12-07-coverage.csv").read_bytes()
