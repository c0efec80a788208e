"""Reconcile and statistics from a small scripted fixture, every number counted by hand below.

Receipts arrive the three real ways: a pull device through the API (uvicorn), an SFTP
device through ``collect_receipts`` (real sshd), and an operator's "Đã phát" button (the
web form). Programs, segments and deliveries are recorded as the build and push would.

Bulletins: b1 routine/policy, b2 urgent/notice (vi + Mông), b3 emergency (Y Tý).
Segments:  g greeting 6 s (no bulletin) · s1 b1 vi 60 s · s2v b2 vi 120 s · s2h b2 hmn 60 s · e3 b3 vi 30 s
Programs (→ items, one per bulletin in a program):
  P1 02641/2026-11-30/morning [g s1 s2v s2h]  → (P1,b1) (P1,b2)
  P2 02641/2026-12-01/morning [g s1]          → (P2,b1)
  P3 02641/emergency/b3       [e3]            → (P3,b3)
  P4 02695/2026-12-01/morning [g s1 s2v]      → (P4,b1) (P4,b2)
  P5 02710/2026-12-01/morning [g s1]          → (P5,b1)
Receipts:
  pull  y-ty-pull  P1: s1 ✓, s2v ✓, s2h ✗ "mất điện"          → (P1,b1) played, (P1,b2) played (vi part only)
  pull  y-ty-pull  P3: e3 ✓ (approval + 300 s)                 → (P3,b3) played
  pull  y-ty-pull  P2: s2v ✓                                   → played but not scheduled: b2 not in P2
  sftp  y-ty-sftp  P2: g ✓, s1 ✗ "loa hỏng"                    → (P2,b1) not played, reason "loa hỏng"
  sftp  y-ty-sftp  02641/2026-12-01/evening: s1 ✓              → played but not scheduled: no such program
  web   Bản Lầu operator "Đã phát" P4                          → (P4,b1) (P4,b2) played
  none for P5; its push failed "Connection refused"            → (P5,b1) not played, not delivered
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import jsonschema
import pytest
from playwright.sync_api import Browser

from pipeline.bench.sshd import SshServer
from pipeline.broadcast import receipts as rc
from pipeline.broadcast.collect_receipts import collect_receipts
from pipeline.broadcast.reconcile import NOT_PLAYED, PLAYED, reconcile, tier_of
from pipeline.broadcast.statistics import compute_statistics
from pipeline.cli import main
from pipeline.config import Settings
from pipeline.intake import parse_bulletin
from pipeline.models import Commune, Delivery, Program, Segment
from pipeline.package import day_valid_until, package_commune
from pipeline.signing import load_key
from pipeline.store import bulletins as bulletin_store
from pipeline.store import runs as run_store
from pipeline.store.tokens import add_token
from pipeline.transports import open_transport
from pipeline.units import PackageUnit
from tests.conftest import REPO, Project
from tests.fake_http import FakeHttp, status
from tests.web_support import PASSWORD, Web, csrf_of, make_user, serve_project

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
PULL_TOKEN = "reconcile-test-token-y-ty-pull-0123456789"
APPROVED = dt.datetime(2026, 12, 1, 8, 0, tzinfo=TZ)
BULLETIN = """+++
title = "{title}"
category = "{category}"
priority = "{priority}"
source = "UBND tỉnh"
reference = ""
valid_from = 2026-11-01
valid_until = 2026-12-31
targets = {targets}
languages = {languages}
+++
Nội dung.
"""


def deployment_toml(sshd: SshServer, remote: Path) -> str:
    return f"""
timezone = "Asia/Ho_Chi_Minh"
[defaults]
slots = [{{ name = "morning", start = "05:30", max_minutes = 10 }}]

[[commune]]
code = "02641"
name = "Y Tý"
languages = ["vi", "hmn"]
  [[commune.endpoint]]
  name = "y-ty-pull"
  transport = "local"
  path = "endpoints/y-ty-pull"
{sshd.endpoint_toml("y-ty-sftp", remote)}
[[commune]]
code = "02695"
name = "Bản Lầu"
languages = ["vi"]
  [[commune.endpoint]]
  name = "ban-lau-loa"
  transport = "local"
  path = "endpoints/ban-lau-loa"

[[commune]]
code = "02710"
name = "Trịnh Tường"
languages = ["vi"]
  [[commune.endpoint]]
  name = "trinh-tuong-loa"
  transport = "local"
  path = "endpoints/trinh-tuong-loa"
"""


def seg(root: Path, name: str, ms: int, lang: str, bulletin: int | None) -> Segment:
    path = root / "segs" / f"{name}.mp3"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f"fake audio {name}".encode())
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return Segment(name, path, ms, "speech", lang, name, path.stat().st_size, sha, bulletin_id=bulletin)


def package(settings: Settings, commune: Commune, program: Program) -> None:
    unit = PackageUnit(
        commune=commune,
        folder=f"programs/{program.date.isoformat()}",
        programs=(program,),
        timezone="Asia/Ho_Chi_Minh",
        valid_until=day_valid_until(program.date, TZ),
        date=program.date,
    )
    package_commune(unit, settings=settings, key=load_key(settings.signing_key_file, create=True))


@pytest.fixture
def receiver(fake_http: FakeHttp) -> str:
    """The province's report receiver: answers 202 to every push."""
    fake_http.answer = status(202)
    return f"{fake_http.url}/loa/bao-cao"


@pytest.fixture
def scripted(tmp_path: Path, sshd_server: SshServer) -> Iterator[tuple[Web, dict[str, int]]]:
    root = tmp_path / "p"
    (root / "schedules").mkdir(parents=True)
    remote = tmp_path / "sftp-device"
    (remote / "reports").mkdir(parents=True)
    (root / "schedules" / "d.toml").write_text(deployment_toml(sshd_server, remote), encoding="utf-8")
    (root / "loa.toml").write_text(f'data_dir = "data"\ntemplates_dir = "{REPO / "templates"}"\n', encoding="utf-8")
    project = Project(root=root, config=root / "loa.toml")
    settings, deployment = project.settings, project.deployment
    db = project.db()
    ids: dict[str, int] = {}
    for key, title, category, priority, targets, langs in (
        ("b1", "Chính sách bảo hiểm y tế", "policy", "routine", '["all"]', '["vi"]'),
        ("b2", "Lịch tiêm chủng", "notice", "urgent", '["all"]', '["vi", "hmn"]'),
        ("b3", "Cảnh báo lũ quét", "emergency", "emergency", '["02641"]', '["vi"]'),
    ):
        text = BULLETIN.format(title=title, category=category, priority=priority, targets=targets, languages=langs)
        [(b, _)] = bulletin_store.save_bulletins(db, [parse_bulletin(text, where=key, deployment=deployment).bulletin])
        assert b.id is not None
        bulletin_store.approve(db, b.id, by="test")
        ids[key] = b.id
    t = db.table("bulletins")
    with db.begin() as conn:  # the approval time the latency is measured from
        conn.execute(t.update().where(t.c.id == ids["b3"]).values(approved_at=APPROVED.astimezone(dt.UTC)))
    g = seg(root, "g", 6000, "vi", None)
    s1 = seg(root, "s1", 60000, "vi", ids["b1"])
    s2v = seg(root, "s2v", 120000, "vi", ids["b2"])
    s2h = seg(root, "s2h", 60000, "hmn", ids["b2"])
    e3 = seg(root, "e3", 30000, "vi", ids["b3"])
    run_store.record_segments(db, [g, s1, s2v, s2h, e3])

    def program(pid: str, day: dt.date, items: tuple[Segment, ...], kind: str = "program") -> Program:
        commune, _, slot = pid.split("/")
        slot = "emergency" if kind == "emergency" else slot
        start = dt.datetime.combine(day, dt.time(5, 30), tzinfo=TZ)
        p = Program(pid, commune, day, slot, start, "routine", day, items, kind=kind)
        run_store.record_program(db, p)
        return p

    d30, d1 = dt.date(2026, 11, 30), dt.date(2026, 12, 1)
    program("02641/2026-11-30/morning", d30, (g, s1, s2v, s2h))
    program("02641/2026-12-01/morning", d1, (g, s1))
    program(f"02641/emergency/{ids['b3']}", d1, (e3,), kind="emergency")
    p4 = program("02695/2026-12-01/morning", d1, (g, s1, s2v))
    program("02710/2026-12-01/morning", d1, (g, s1))
    ban_lau = deployment.commune("02695")
    assert ban_lau is not None
    package(settings, ban_lau, p4)  # the operator's page reads its manifest

    def delivery(
        endpoint: str, commune: str, label: str, status: str, at: dt.datetime, error: str | None = None
    ) -> None:
        finished = at.astimezone(dt.UTC)  # the store keeps UTC, as deliver's utcnow() gives it
        run_store.record_delivery(db, Delivery(endpoint, commune, label, status, 1, error=error, finished_at=finished))

    delivery("y-ty-sftp", "02641", "2026-11-30", "delivered", dt.datetime(2026, 11, 29, 23, 0, tzinfo=TZ))
    delivery("y-ty-sftp", "02641", "2026-12-01", "delivered", dt.datetime(2026, 11, 30, 23, 0, tzinfo=TZ))
    delivery("y-ty-sftp", "02641", f"emergency/{ids['b3']}", "delivered", APPROVED + dt.timedelta(seconds=90))
    delivery("ban-lau-loa", "02695", "2026-12-01", "delivered", dt.datetime(2026, 11, 30, 23, 0, tzinfo=TZ))
    delivery(
        "trinh-tuong-loa",
        "02710",
        "2026-12-01",
        "failed",
        dt.datetime(2026, 11, 30, 23, 0, tzinfo=TZ),
        "Connection refused",
    )
    add_token(db, "endpoint", "y-ty-pull", PULL_TOKEN)
    make_user(db, "dai-banlau", "operator", commune="02695")
    make_user(db, "duyet", "approver")
    db.close()

    secret = rc.load_receipt_secret(settings.data_dir)
    at = dt.datetime(2026, 11, 30, 5, 30, tzinfo=TZ)

    def item(s: Segment, ok: bool, reason: str | None = None) -> rc.PlayedItem:
        return rc.PlayedItem(f"media/{s.key}.mp3", s.sha256, at, at, ok, reason, bulletin_id=s.bulletin_id)

    def receipt(
        endpoint: str, source: str, pid: str, items: tuple[rc.PlayedItem, ...], issued: dt.datetime = at
    ) -> bytes:
        r = rc.Receipt(rc.new_receipt_id(), endpoint, "02641", source, pid, issued, items)
        return rc.dumps(rc.sign(r, rc.endpoint_key(secret, endpoint)))

    with serve_project(project) as web:
        # 1. the pull device uploads three receipts through the API
        pulled = [
            receipt(
                "y-ty-pull",
                "pull",
                "02641/2026-11-30/morning",
                (item(s1, True), item(s2v, True), item(s2h, False, "mất điện")),
            ),
            receipt(
                "y-ty-pull",
                "pull",
                f"02641/emergency/{ids['b3']}",
                (item(e3, True),),
                APPROVED + dt.timedelta(seconds=300),
            ),
            receipt("y-ty-pull", "pull", "02641/2026-12-01/morning", (item(s2v, True),)),
        ]
        with httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {PULL_TOKEN}"}) as client:
            for data in pulled:
                assert client.post("/api/v1/endpoints/y-ty-pull/receipts", content=data).status_code == 201
        # 2. the SFTP device left two receipts in reports/; collected over sshd
        (remote / "reports" / "1.json").write_bytes(
            receipt("y-ty-sftp", "sftp", "02641/2026-12-01/morning", (item(g, True), item(s1, False, "loa hỏng")))
        )
        (remote / "reports" / "2.json").write_bytes(
            receipt("y-ty-sftp", "sftp", "02641/2026-12-01/evening", (item(s1, True),))
        )
        endpoint = deployment.endpoint("y-ty-sftp")
        assert endpoint is not None
        with open_transport(endpoint, settings=settings.deliver) as transport:
            collected = collect_receipts(transport, db=web.db, secret=secret, tz=TZ)
        assert len(collected.collected) == 2 and not collected.refused
        # 3. the Bản Lầu operator presses "Đã phát" for P4
        op = web.client("dai-banlau")
        token = csrf_of(op.get("/communes/02695").text)
        form = {"csrf_token": token, "kind": "played", "program": "02695/2026-12-01/morning"}
        assert op.post("/communes/02695/reports", data=form).status_code == 303
        yield web, ids


def test_reconcile_and_statistics_match_the_hand_count(scripted: tuple[Web, dict[str, int]], tmp_path: Path) -> None:
    web, ids = scripted
    deployment = web.project.deployment
    rec = reconcile(web.db, deployment, dt.date(2026, 11, 1), dt.date(2026, 12, 31), tz=TZ)
    b1, b2, b3 = ids["b1"], ids["b2"], ids["b3"]
    got = {(line.program, line.bulletin_id): line for line in rec.lines}
    assert len(got) == 7
    expect = {
        ("02641/2026-11-30/morning", b1): (PLAYED, ("pull",), None, "delivered"),
        ("02641/2026-11-30/morning", b2): (PLAYED, ("pull",), None, "delivered"),
        ("02641/2026-12-01/morning", b1): (NOT_PLAYED, (), "y-ty-sftp: loa hỏng", "delivered"),
        (f"02641/emergency/{b3}", b3): (PLAYED, ("pull",), None, "delivered"),
        ("02695/2026-12-01/morning", b1): (PLAYED, ("web",), None, "delivered"),
        ("02695/2026-12-01/morning", b2): (PLAYED, ("web",), None, "delivered"),
        ("02710/2026-12-01/morning", b1): (NOT_PLAYED, (), "not delivered (Connection refused)", "not delivered"),
    }
    assert {k: (v.status, v.sources, v.reason, v.delivered) for k, v in got.items()} == expect
    assert got[("02641/2026-11-30/morning", b2)].played_ms == 120000  # the Mông part did not play
    assert got[("02641/2026-11-30/morning", b2)].language_ms == (("vi", 120000, 120000), ("hmn", 60000, 0))
    assert sorted((u.program, u.source, u.bulletin_id, u.reason) for u in rec.unscheduled) == [
        ("02641/2026-12-01/evening", "sftp", b1, "no such program was built"),
        ("02641/2026-12-01/morning", "pull", b2, "bulletin not in this program"),
    ]
    # device health: Trịnh Tường never answered; Y Tý (push, pull, receipts) and Bản Lầu (web) did
    health = {h.code: h for h in rec.health}
    assert {code for code, h in health.items() if h.silent} == {"02710"}
    y_ty = {e.endpoint: e for e in health["02641"].endpoints}
    assert y_ty["y-ty-pull"].last_pull is not None and y_ty["y-ty-pull"].last_receipt is not None
    assert y_ty["y-ty-sftp"].last_push is not None and y_ty["y-ty-pull"].last_push is None

    stats = compute_statistics(rec, web.db, deployment, tz=TZ)
    rows = {(r.period, r.dimension, r.value): r for r in stats.rows}

    def nums(period: str, dim: str, value: str) -> tuple[int, int, int, float | None, int, int]:
        r = rows[(period, dim, value)]
        return (r.bulletins, r.items_scheduled, r.items_played, r.coverage, r.ms_scheduled, r.ms_played)

    # November: (P1,b1) + (P1,b2); 60+180 s scheduled, 60+120 s played
    assert nums("2026-11", "all", "all") == (2, 2, 2, 1.0, 240000, 180000)
    # December: P2b1 P3b3 P4b1 P4b2 P5b1; played P3 P4b1 P4b2 = 30+60+120 s of 60+30+60+120+60 s
    assert nums("2026-12", "all", "all") == (3, 5, 3, 0.6, 330000, 210000)
    assert nums("2026-Q4", "all", "all") == (3, 7, 5, round(5 / 7, 4), 570000, 390000)
    assert nums("2026-Q4", "tier", "normal") == (1, 4, 2, 0.5, 240000, 120000)
    assert nums("2026-Q4", "tier", "priority") == (1, 2, 2, 1.0, 300000, 240000)
    assert nums("2026-Q4", "tier", "emergency") == (1, 1, 1, 1.0, 30000, 30000)
    assert nums("2026-Q4", "language", "vi") == (3, 7, 5, round(5 / 7, 4), 510000, 390000)
    assert nums("2026-Q4", "language", "hmn") == (1, 1, 0, 0.0, 60000, 0)
    assert nums("2026-Q4", "commune", "02641") == (3, 4, 3, 0.75, 330000, 210000)
    assert nums("2026-Q4", "commune", "02695") == (2, 2, 2, 1.0, 180000, 180000)
    assert nums("2026-Q4", "commune", "02710") == (1, 1, 0, 0.0, 60000, 0)
    assert nums("2026-Q4", "topic", "policy") == (1, 4, 2, 0.5, 240000, 120000)
    assert nums("2026-Q4", "topic", "emergency") == (1, 1, 1, 1.0, 30000, 30000)
    # emergency: on y-ty-sftp after 90 s (push), on y-ty-pull after 300 s (its receipt): 300 s
    [lat] = stats.latency
    assert (lat.bulletin_id, lat.endpoints, lat.reached, lat.seconds) == (b3, 2, 2, 300.0)
    assert tier_of("routine") == "normal" and tier_of("urgent") == "priority" and tier_of("normal") == "normal"


def test_loa_report_writes_csv_and_json_and_pushes(
    scripted: tuple[Web, dict[str, int]],
    tmp_path: Path,
    receiver: str,
    fake_http: FakeHttp,
    capsys: pytest.CaptureFixture[str],
) -> None:
    web, _ = scripted
    config = web.project.config
    config.write_text(
        config.read_text()
        + f'[outbound]\nallow_loopback = true\n[report]\npush_url = "{receiver}"\nallow_http = true\n'
    )
    (tmp_path / "token").write_text("bi-mat-cua-tinh\n")
    with config.open("a") as f:
        f.write(f'token_file = "{tmp_path / "token"}"\n')
    out = tmp_path / "out"
    base = ["--config", str(config), "report", "--from", "2026-11-01", "--to", "2026-12-31", "--out", str(out)]
    assert main([*base, "--push"]) == 0
    json_file = out / "loa-2026-11-01_2026-12-31.json"
    doc = json.loads(json_file.read_bytes())
    schema = json.loads((REPO / "schemas" / "report-2.schema.json").read_text())
    jsonschema.validate(doc, schema, format_checker=jsonschema.FormatChecker())
    [(auth, body)] = [(r.headers.get("authorization", ""), r.body) for r in fake_http.requests]
    assert auth == "Bearer bi-mat-cua-tinh"
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(json_file.read_bytes()).hexdigest()
    with (out / "loa-2026-11-01_2026-12-31-statistics.csv").open(encoding="utf-8-sig") as f:
        table = {(r["period"], r["dimension"], r["value"]): r for r in csv.DictReader(f)}
    assert table[("2026-Q4", "all", "all")]["items_played"] == "5"
    assert table[("2026-Q4", "all", "all")]["minutes_scheduled"] == "9.5"
    assert table[("2026-12", "all", "all")]["coverage"] == "0.6"
    with (out / "loa-2026-11-01_2026-12-31-emergency-latency.csv").open(encoding="utf-8-sig") as f:
        [lat] = list(csv.DictReader(f))
    assert lat["latency_seconds"] == "300.0" and lat["title"] == "Cảnh báo lũ quét"
    capsys.readouterr()
    # bad input: exit 2, nothing pushed
    assert main([*base, "--format", "xml"]) == 2
    assert main(["--config", str(config), "report", "--from", "2026-12-31", "--to", "2026-11-01"]) == 2
    # plain http without allow_http is refused
    config.write_text(config.read_text().replace("allow_http = true", "allow_http = false"))
    assert main([*base, "--push"]) == 2
    assert "use https" in capsys.readouterr().err
    assert len(fake_http.requests) == 1


def test_the_staff_page_shows_not_played_unscheduled_silent_and_charts(scripted: tuple[Web, dict[str, int]]) -> None:
    web, _ = scripted
    staff = web.client("duyet")
    page = staff.get("/reports", params={"from": "2026-11-01", "to": "2026-12-31", "period": "2026-Q4"})
    assert page.status_code == 200
    html = page.text
    assert "Có 1 xã im lặng quá 1 ngày: <strong>Trịnh Tường</strong>" in html
    assert "Chưa phát (2)" in html and "y-ty-sftp: loa hỏng" in html
    assert "Chưa gửi tới thiết bị (Connection refused)" in html
    assert "Đã phát nhưng không có trong lịch (2)" in html
    assert "Không có chương trình này trong lịch" in html and "Bản tin không có trong chương trình này" in html
    assert html.count("<svg") == 11 and "<script" not in html  # two per dimension and the languages, on the server
    assert "Phát bằng tiếng dân tộc theo từng xã" in html and "Y Tý — Tiếng Mông" in html
    assert "5/7 (71 %)" in html and "Thông thường" in html and "Tiếng Mông" in html
    assert "5 phút 0 giây" in html  # the emergency's latency
    exported = staff.get("/reports/export.json", params={"from": "2026-11-01", "to": "2026-12-31"})
    doc = exported.json()
    [total] = [r for r in doc["statistics"] if (r["period"], r["dimension"]) == ("2026-Q4", "all")]
    assert (total["items_scheduled"], total["items_played"], total["minutes_played"]) == (7, 5, 6.5)
    assert staff.get("/reports/export.csv", params={"from": "2026-11-01", "to": "2026-12-31"}).status_code == 200
    # an operator is not staff; anonymous goes to the login page
    assert web.client("dai-banlau").get("/reports").status_code == 403
    assert web.client().get("/reports").status_code == 303


@pytest.mark.slow
def test_in_chromium_a_problem_report_becomes_a_not_played_reason(
    scripted: tuple[Web, dict[str, int]], browser: Browser
) -> None:
    web, ids = scripted
    settings, deployment = web.project.settings, web.project.deployment
    now = dt.datetime.now(settings.tz)
    today = now.date()
    root = web.project.root
    items = (seg(root, "g", 6000, "vi", None), seg(root, "s1", 60000, "vi", ids["b1"]))
    start = now - dt.timedelta(minutes=1)  # the slot has started, whatever the hour: only then can it be reported
    program = Program(f"02695/{today.isoformat()}/morning", "02695", today, "morning", start, "routine", today, items)
    run_store.record_program(web.db, program)
    ban_lau = deployment.commune("02695")
    assert ban_lau is not None
    package(settings, ban_lau, program)
    for name in ("dai-banlau", "duyet"):
        page = browser.new_context(base_url=web.url).new_page()
        page.set_default_timeout(30_000)
        page.goto("/login")
        page.fill("#name", name)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        if name == "dai-banlau":
            page.goto("/communes/02695")
            form = page.locator("form.problem").first
            form.locator("input[name=note]").fill("Mất điện cả thôn")
            form.locator("button").click()
            page.wait_for_url("**/communes/02695?ok=problem")
        else:
            page.goto(f"/reports?from={today.isoformat()}&to={today.isoformat()}")
            row = page.locator("#not-played tr", has_text="Mất điện cả thôn")
            assert row.count() == 1
            assert "Bản Lầu" in row.inner_text() and "Đài xã báo: Mất điện cả thôn" in row.inner_text()
