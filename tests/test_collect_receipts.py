"""Receipts left by SFTP devices in reports/: collected over a real sshd, verified, stored, cleared."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.bench.sshd import SshServer
from pipeline.broadcast import receipts as rc
from pipeline.broadcast.collect_receipts import collect_from_endpoints, collect_receipts
from pipeline.config import DeliverSettings
from pipeline.models import Endpoint
from pipeline.store import Database, open_database
from pipeline.store import receipts as receipt_store
from pipeline.transports import open_transport

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SECRET = b"collect-test-secret-0123456789abcdef"
SETTINGS = DeliverSettings(retries=0, backoff_s=0.0, connect_timeout_s=5, op_timeout_s=10)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = open_database(f"sqlite:///{tmp_path / 'loa.db'}")
    yield database  # type: ignore[misc]
    database.close()


def device_receipt(endpoint: Endpoint, *, key_of: str | None = None, rid: str | None = None, ok: bool = True) -> bytes:
    at = dt.datetime(2026, 12, 2, 5, 30, tzinfo=TZ)
    r = rc.Receipt(
        id=rid or rc.new_receipt_id(),
        endpoint=endpoint.name,
        commune=endpoint.commune,
        source="sftp",
        program=f"{endpoint.commune}/2026-12-02/morning",
        issued_at=at,
        items=(
            rc.PlayedItem("media/a.mp3", "a" * 64, at, at + dt.timedelta(seconds=30), ok, None if ok else "mất điện"),
        ),
    )
    return rc.dumps(rc.sign(r, rc.endpoint_key(SECRET, key_of or endpoint.name)))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_collect_over_sftp_stores_good_refuses_forged_and_clears(
    sshd_running: SshServer,
    tmp_path: Path,
    db: Database,
) -> None:
    remote = tmp_path / "device"
    reports = remote / "reports"
    reports.mkdir(parents=True)
    endpoint = sshd_running.endpoint(remote, name="y-ty-1")
    good = device_receipt(endpoint)
    (reports / "a.json").write_bytes(good)
    (reports / "b.json").write_bytes(device_receipt(endpoint, ok=False))
    (reports / "forged.json").write_bytes(device_receipt(endpoint, key_of="ban-lau-1"))
    (reports / "notes.txt").write_text("not a receipt")
    forged_sha = sha(reports / "forged.json")
    with open_transport(endpoint, settings=SETTINGS) as t:
        report = collect_receipts(t, db=db, secret=SECRET, tz=TZ)
    assert len(report.collected) == 2 and report.cleared == []
    assert [name for name, _ in report.refused] == ["forged.json"]
    assert "MAC does not match" in report.refused[0][1]
    assert receipt_store.count_receipts(db) == 2
    assert sorted(p.name for p in reports.iterdir()) == ["notes.txt", "rejected"]
    assert sha(reports / "rejected" / "forged.json") == forged_sha  # moved aside, not altered
    stored = receipt_store.receipts_between(db, dt.date(2026, 12, 2), dt.date(2026, 12, 2))
    assert {r.source for r in stored} == {"sftp"} and sum(r.completed for r in stored) == 1

    # the same file again (a copy the device kept, or an attacker's replay): not counted twice
    (reports / "a.json").write_bytes(good)
    # a new receipt reusing a stored id with new content, signed with the right key: a replay
    reused = rc.parse(good).id
    (reports / "again.json").write_bytes(device_receipt(endpoint, rid=reused, ok=False))
    with open_transport(endpoint, settings=SETTINGS) as t:
        second = collect_receipts(t, db=db, secret=SECRET, tz=TZ)
    assert second.collected == [] and second.cleared == ["a.json"]
    assert [name for name, _ in second.refused] == ["again.json"]
    assert "replay refused" in second.refused[0][1]
    assert receipt_store.count_receipts(db) == 2
    assert not (reports / "a.json").exists()


def test_receipt_of_another_endpoint_or_source_is_refused(
    sshd_running: SshServer,
    tmp_path: Path,
    db: Database,
) -> None:
    remote = tmp_path / "device"
    (remote / "reports").mkdir(parents=True)
    endpoint = sshd_running.endpoint(remote, name="y-ty-1")
    other = dataclasses.replace(endpoint, name="ban-lau-1")
    (remote / "reports" / "x.json").write_bytes(device_receipt(other))  # validly signed, by another device
    with open_transport(endpoint, settings=SETTINGS) as t:
        report = collect_receipts(t, db=db, secret=SECRET, tz=TZ)
    assert report.collected == [] and "came from 'y-ty-1'" in report.refused[0][1]
    assert receipt_store.count_receipts(db) == 0


def test_keep_moves_to_collected_and_local_endpoints_work_too(tmp_path: Path, db: Database) -> None:
    root = tmp_path / "usb"
    (root / "reports").mkdir(parents=True)
    endpoint = Endpoint(name="y-ty-usb", commune="02641", transport="local", path=root)
    (root / "reports" / "r.json").write_bytes(device_receipt(endpoint))
    with open_transport(endpoint, settings=SETTINGS) as t:
        report = collect_receipts(t, db=db, secret=SECRET, tz=TZ, keep=True)
    assert len(report.collected) == 1
    assert [p.name for p in (root / "reports" / "collected").iterdir()] == ["r.json"]
    missing = Endpoint(name="gone", commune="02641", transport="local", path=tmp_path / "nowhere")
    [failed] = collect_from_endpoints([missing], db=db, secret=SECRET, tz=TZ, settings=SETTINGS)
    assert failed.error and "gone" in failed.error


def test_cli_receipts_key_and_collect(tmp_path: Path, small_cli: object) -> None:
    run = small_cli  # a small project with local endpoints
    key = run("receipts", "key", "y-ty-loa")  # type: ignore[operator]
    assert key.code == 0 and len(key.out.strip()) == 64
    assert run("receipts", "key", "nope").code == 2  # type: ignore[operator]
    done = run("receipts", "collect", "--endpoint", "y-ty-loa", "--json")  # type: ignore[operator]
    assert done.code == 3  # the endpoint's directory does not exist in the fixture: named, exit 3
    assert done.json()[0]["endpoint"] == "y-ty-loa"


def test_the_push_collects_receipts_on_its_own_connection(tmp_path: Path) -> None:
    """A device's receipts come back with the next push: the deliver unit reads reports/ after its folders."""
    from pipeline.produce import push_folders
    from tests.conftest import make_small, package_day

    project = make_small(tmp_path / "small", Path(__file__).resolve().parent.parent / "voices")
    settings = project.settings
    commune = project.deployment.commune("02695")
    assert commune is not None
    [endpoint] = commune.endpoints
    day = dt.date(2026, 12, 2)
    package_day(settings, commune, [], day)
    secret = rc.load_receipt_secret(settings.data_dir)
    reports = project.root / "endpoints" / endpoint.name / "reports"
    reports.mkdir(parents=True)
    at = dt.datetime(2026, 12, 2, 5, 30, tzinfo=TZ)
    receipt = rc.sign(
        rc.Receipt(
            id=rc.new_receipt_id(),
            endpoint=endpoint.name,
            commune=commune.code,
            source="sftp",
            program=f"{commune.code}/2026-12-02/morning",
            issued_at=at,
            items=(rc.PlayedItem("media/a.mp3", "a" * 64, at, at + dt.timedelta(seconds=30), True, None),),
        ),
        rc.endpoint_key(secret, endpoint.name),
    )
    (reports / "r1.json").write_bytes(rc.dumps(receipt))
    target = [(endpoint, [f"programs/{day}"])]
    # an emergency's delivery does not stop to read receipts: they wait for the next push
    [urgent] = push_folders(target, label=str(day), settings=settings, today=day, urgent=True)
    assert urgent.status == "delivered" and (reports / "r1.json").is_file()
    [d] = push_folders(target, label=str(day), settings=settings, today=day)
    assert d.status == "delivered"
    db = project.db()
    assert receipt_store.stored_mac(db, receipt.id) == receipt.mac  # stored by the push
    assert not (reports / "r1.json").exists()  # and cleared from the device
    db.close()
