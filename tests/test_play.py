"""``loa pull --play`` with real mpv: receipts written, signed, uploaded; forged and replayed uploads refused."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import pytest

from pipeline import manifest as mf
from pipeline.broadcast import receipts as rc
from pipeline.cli import main
from pipeline.models import Source
from pipeline.play import play_pulled, player_command, select_program
from pipeline.pull import pull
from pipeline.signing import PublicKey, load_key, public_key
from pipeline.store import receipts as receipt_store
from pipeline.store.tokens import add_token
from tests.web_support import Built, Web, serve_project

BUILD_COMMUNE = "02641"
pytestmark = [pytest.mark.audio, pytest.mark.slow]
TOKEN = "play-test-token-for-y-ty-loa-0123456789"
OTHER = "play-test-token-for-ban-lau-loa-012345678"


@pytest.fixture(scope="module")
def built(built: Built) -> Built:
    """The shared built project (``BUILD_COMMUNE`` only), with the endpoints' tokens."""
    db = built.project.db()
    add_token(db, "endpoint", "y-ty-loa", TOKEN)
    add_token(db, "endpoint", "ban-lau-loa", OTHER)
    db.close()
    return built


@pytest.fixture
def web(built: Built) -> Iterator[Web]:
    with serve_project(built.project) as web:
        yield web


def key_of(built: Built) -> PublicKey:
    return public_key(load_key(built.project.settings.signing_key_file).public_key())


def morning_of(built: Built) -> dt.datetime:
    return dt.datetime.combine(built.day, dt.time(6, 0), tzinfo=built.project.settings.tz)


def test_pull_then_play_with_mpv_writes_and_uploads_signed_receipts(built: Built, web: Web, tmp_path: Path) -> None:
    to = tmp_path / "device"
    pull(web.url, TOKEN, to, key=key_of(built), dates=[built.day])
    report = play_pulled(web.url, TOKEN, to, public_key=key_of(built), clock=lambda: morning_of(built))
    assert report.failed == 0 and not report.upload_errors, report
    assert len(report.receipts) == 2  # the emergency in force, then the morning program
    assert report.uploaded == 2
    schema = json.loads(rc.SCHEMA_FILE.read_text(encoding="utf-8"))
    sent = sorted((to / "reports" / "sent").glob("*.json"))
    assert [p.stem for p in sent] == sorted(report.receipts)
    assert not list((to / "reports").glob("*.json"))  # nothing left unsent
    programs = set()
    for path in sent:
        doc = json.loads(path.read_bytes())
        jsonschema.validate(doc, schema, format_checker=jsonschema.FormatChecker())
        assert doc["source"] == "pull" and doc["endpoint"] == "y-ty-loa"
        assert doc["items"] and all(i["completed"] for i in doc["items"])
        programs.add(doc["program"])
    assert programs == {f"02641/{built.day.isoformat()}/morning", f"02641/emergency/{built.emergency}"}
    stored = receipt_store.receipts_between(web.db, built.day - dt.timedelta(days=2), built.day)
    assert {r.id for r in stored} >= set(report.receipts)
    # the manifest's items are exactly what was reported, by sha256
    manifest = mf.read(to / "programs" / built.day.isoformat() / mf.FILE)
    morning = select_program(manifest, slot="morning", now=morning_of(built))
    assert morning is not None
    [doc] = [json.loads(p.read_bytes()) for p in sent if json.loads(p.read_bytes())["program"].endswith("/morning")]
    assert [i["sha256"] for i in doc["items"]] == [i.sha256 for i in morning.items]

    # a second run: the emergency was already played; the morning program plays again (a new receipt)
    again = play_pulled(web.url, TOKEN, to, public_key=key_of(built), clock=lambda: morning_of(built))
    assert len(again.receipts) == 1 and again.uploaded == 1


def test_damaged_file_and_failing_player_are_reported_not_hidden(built: Built, web: Web, tmp_path: Path) -> None:
    to = tmp_path / "device"
    pull(web.url, TOKEN, to, key=key_of(built), dates=[built.day])
    manifest = mf.read(to / "programs" / built.day.isoformat() / mf.FILE)
    first = manifest.programs[0].items[0].file
    assert first is not None
    (to / first).write_bytes(b"not the audio")
    # with the deployment key the damaged folder is refused whole, and nothing of it plays
    refused = play_pulled(web.url, TOKEN, to, public_key=key_of(built), slot="morning", clock=lambda: morning_of(built))
    assert refused.refused and f"programs/{built.day.isoformat()}" in refused.refused[0]
    assert all("/emergency/" in json.loads(p.read_bytes())["program"] for p in (to / "reports" / "sent").glob("*"))
    # without it (no key given), each item is checked and reported
    report = play_pulled(web.url, TOKEN, to, slot="morning", clock=lambda: morning_of(built), player=["false"])
    assert report.played == 0 and report.failed > 0
    docs = [json.loads(p.read_bytes()) for p in (to / "reports" / "sent").glob("*.json")]
    reasons = {i["reason"] for d in docs for i in d["items"]}
    assert "file does not match the manifest's SHA-256" in reasons
    assert any(r and r.startswith("player exited 1") for r in reasons)


def test_cli_pull_play_exit_codes(built: Built, web: Web, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    to = tmp_path / "device"
    pem = tmp_path / "loa.pub.pem"
    pem.write_text(key_of(built).pem)
    args = ["pull", "--server", web.url, "--token", TOKEN, "--key", str(pem), "--to", str(to)]
    args += ["--date", built.day.isoformat()]
    # the server's today has no program on this device (only tomorrow was built): exit 2, named
    code = main([*args, "--play", "--slot", "morning", "--json"])
    assert code == 2
    assert "no program for" in capsys.readouterr().err
    assert player_command("mpv --no-video") == ["mpv", "--no-video"]


def _signed_upload(web: Web, built: Built, *, key_endpoint: str, token: str = TOKEN) -> tuple[httpx.Response, bytes]:
    secret = rc.load_receipt_secret(built.project.settings.data_dir)
    at = morning_of(built)
    receipt = rc.Receipt(
        id=rc.new_receipt_id(),
        endpoint="y-ty-loa",
        commune="02641",
        source="pull",
        program=f"02641/{built.day.isoformat()}/morning",
        issued_at=at,
        items=(rc.PlayedItem("media/x.mp3", "c" * 64, at, at, True),),
    )
    data = rc.dumps(rc.sign(receipt, rc.endpoint_key(secret, key_endpoint)))
    with httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {token}"}) as client:
        return client.post("/api/v1/endpoints/y-ty-loa/receipts", content=data), data


def test_api_refuses_forged_and_replayed_receipts(built: Built, web: Web) -> None:
    before = receipt_store.count_receipts(web.db)
    forged, _ = _signed_upload(web, built, key_endpoint="ban-lau-loa")
    assert forged.status_code == 403 and "không hợp lệ" in forged.json()["detail"]
    ok, data = _signed_upload(web, built, key_endpoint="y-ty-loa")
    assert ok.status_code == 201
    with httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        replay = client.post("/api/v1/endpoints/y-ty-loa/receipts", content=data)
        assert replay.status_code == 409 and "đã được nhận" in replay.json()["detail"]
        bad = client.post("/api/v1/endpoints/y-ty-loa/receipts", content=b"{not json")
        assert bad.status_code == 400
        anon = httpx.post(f"{web.url}/api/v1/endpoints/y-ty-loa/receipts", content=data)
        assert anon.status_code == 401
    assert receipt_store.count_receipts(web.db) == before + 1
    # another endpoint's token cannot post for y-ty-loa (404), nor read its key
    with httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {OTHER}"}) as client:
        assert client.post("/api/v1/endpoints/y-ty-loa/receipts", content=data).status_code == 404
        assert client.get("/api/v1/endpoints/y-ty-loa/receipt-key").status_code == 404


def _manifest(*programs: mf.ProgramEntry) -> mf.Manifest:
    at = dt.datetime(2026, 12, 3, 0, 0, tzinfo=dt.UTC)
    return mf.Manifest(
        "y-ty-loa", "playlist", "02641", "Y Tý", "programs/2026-12-02", "Asia/Ho_Chi_Minh", at, programs, ()
    )


def _program(slot: str, start: str, items: tuple[mf.Item, ...] = ()) -> mf.ProgramEntry:
    when = dt.datetime.fromisoformat(start)
    return mf.ProgramEntry(f"02641/2026-12-02/{slot}", "program", slot, when, "routine", when.date(), 2000, items)


def _item(file: str, sha: str, bulletin: int | None = None) -> mf.Item:
    return mf.Item("t", "speech", "vi", 1000, sha, 10, Source("tts"), bulletin_id=bulletin, file=file)


def test_play_program_refuses_unsafe_paths_and_reports_missing_files(tmp_path: Path) -> None:
    from pipeline.play import play_program

    at = dt.datetime(2026, 12, 2, 5, 30, tzinfo=dt.UTC)
    program = _program(
        "morning",
        "2026-12-02T05:30:00+07:00",
        (_item("../../etc/passwd", "a" * 64), _item("media/gone.mp3", "b" * 64, bulletin=4)),
    )
    r = play_program(tmp_path, _manifest(program), program, player=["true"], clock=lambda: at)
    assert [i.reason for i in r.items] == ["unsafe path in the manifest; not played", "file missing on the device"]
    assert r.items[1].bulletin_id == 4 and not r.completed
    assert (r.endpoint, r.commune, r.source) == ("y-ty-loa", "02641", "pull")


def test_select_program_picks_the_slot_due_now() -> None:
    manifest = _manifest(
        _program("morning", "2026-12-02T05:30:00+07:00"), _program("evening", "2026-12-02T17:00:00+07:00")
    )
    tz = dt.timezone(dt.timedelta(hours=7))
    noon = dt.datetime(2026, 12, 2, 12, 0, tzinfo=tz)

    def slot(now: dt.datetime, name: str | None = None) -> str | None:
        found = select_program(manifest, slot=name, now=now)
        return found.slot if found else None

    assert slot(noon) == "morning"
    assert slot(noon.replace(hour=18)) == "evening"
    assert slot(noon.replace(hour=4)) == "morning"
    assert slot(noon, "night") is None


def test_an_emergency_plays_again_at_each_replay_time_that_has_come() -> None:
    from pipeline.play import replay_tag

    t0 = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)
    replays = (t0 + dt.timedelta(hours=2), t0 + dt.timedelta(hours=4))
    manifest = dataclasses.replace(
        _manifest(),
        folder="emergency/7",
        emergency=mf.Emergency(7, "Lũ quét", t0 + dt.timedelta(days=1), replay=replays),
    )
    assert replay_tag(manifest, t0) == "first"
    assert replay_tag(manifest, t0 + dt.timedelta(hours=3)) == "20261202T100000Z"
    assert replay_tag(manifest, t0 + dt.timedelta(hours=9)) == "20261202T120000Z"  # missed ones: the latest only
    assert replay_tag(_manifest(), t0) == "first"
