"""As-run receipts: the format against its JSON Schema, MAC per endpoint, replay refused by the store."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from pipeline.broadcast import receipts as rc
from pipeline.store import open_database
from pipeline.store import receipts as receipt_store

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SECRET = b"0123456789abcdef0123456789abcdef"
SHA = "a" * 64


def schema() -> dict[str, object]:
    data: dict[str, object] = json.loads(rc.SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


def receipt(endpoint: str = "y-ty-loa", **over: object) -> rc.Receipt:
    start = dt.datetime(2026, 12, 2, 5, 30, tzinfo=TZ)
    base = rc.Receipt(
        id=rc.new_receipt_id(),
        endpoint=endpoint,
        commune="02641",
        source="pull",
        program="02641/2026-12-02/morning",
        issued_at=start + dt.timedelta(minutes=5),
        items=(
            rc.PlayedItem("media/a.mp3", SHA, start, start + dt.timedelta(seconds=40), True, bulletin_id=3),
            rc.PlayedItem("media/b.mp3", "b" * 64, start, None, False, reason="mpv exited 2", duration_ms=1000),
        ),
        note="Loa thôn Tả Phìn rè",
    )
    return dataclasses.replace(base, **over)  # type: ignore[arg-type]


def signed(r: rc.Receipt) -> bytes:
    return rc.dumps(rc.sign(r, rc.endpoint_key(SECRET, r.endpoint)))


def test_signed_receipt_matches_the_schema_and_round_trips() -> None:
    data = signed(receipt())
    doc = json.loads(data)
    jsonschema.validate(doc, schema(), format_checker=jsonschema.FormatChecker())
    assert doc["schema"] == "loa.receipt/1"
    back = rc.load_and_verify(data, secret=SECRET, expect_endpoint="y-ty-loa")
    assert back.items[0].bulletin_id == 3 and back.items[1].reason == "mpv exited 2"
    assert not back.completed
    assert rc.to_document(back) == doc


def test_schema_refuses_what_parse_refuses() -> None:
    doc = json.loads(signed(receipt()))
    bad = dict(doc, surprise=1)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema())
    with pytest.raises(rc.ReceiptError, match="unknown field 'surprise'"):
        rc.parse(json.dumps(bad).encode())
    no_items = {k: v for k, v in doc.items() if k != "items"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(no_items, schema())
    with pytest.raises(rc.ReceiptError, match="'items'"):
        rc.parse(json.dumps(no_items).encode())


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d | {"schema": "loa.receipt/9"}, "'schema'"),
        (lambda d: d | {"id": "short"}, "'id'"),
        (lambda d: d | {"source": "fax"}, "'source'"),
        (lambda d: d | {"issued_at": "2026-12-02T05:30:00"}, "no time zone"),
        (lambda d: d | {"items": [d["items"][0] | {"sha256": "XYZ"}]}, r"items\[0\]: field 'sha256'"),
        (lambda d: d | {"items": [d["items"][0] | {"completed": "yes"}]}, r"items\[0\]: field 'completed'"),
    ],
)
def test_malformed_receipt_names_the_field(change: object, match: str) -> None:
    doc = json.loads(signed(receipt()))
    bad = change(doc)  # type: ignore[operator]
    with pytest.raises(rc.ReceiptError, match=match):
        rc.parse(json.dumps(bad).encode(), where="reports/x.json")


def test_altered_receipt_is_refused() -> None:
    doc = json.loads(signed(receipt()))
    doc["items"][1]["completed"] = True  # claim it played in full
    with pytest.raises(rc.ForgedReceiptError, match="MAC does not match"):
        rc.load_and_verify(json.dumps(doc).encode(), secret=SECRET)


def test_receipt_signed_with_another_endpoints_key_is_refused() -> None:
    r = receipt()
    forged = rc.dumps(rc.sign(r, rc.endpoint_key(SECRET, "ban-lau-loa")))  # ban-lau's key, y-ty's name
    with pytest.raises(rc.ForgedReceiptError):
        rc.load_and_verify(forged, secret=SECRET)
    unsigned = rc.dumps(r)
    with pytest.raises(rc.ForgedReceiptError, match="unsigned"):
        rc.load_and_verify(unsigned, secret=SECRET)
    with pytest.raises(rc.ForgedReceiptError, match="came from 'ban-lau-loa'"):
        rc.load_and_verify(signed(r), secret=SECRET, expect_endpoint="ban-lau-loa")


def test_keys_differ_per_endpoint_and_per_deployment() -> None:
    a, b = rc.endpoint_key(SECRET, "y-ty-loa"), rc.endpoint_key(SECRET, "ban-lau-loa")
    assert a != b and len(a) == 32
    assert rc.endpoint_key(b"another secret", "y-ty-loa") != a


def test_receipt_secret_is_made_once_and_private(tmp_path: Path) -> None:
    first = rc.load_receipt_secret(tmp_path)
    assert rc.load_receipt_secret(tmp_path) == first and len(first) == 64
    assert (tmp_path / "receipt_key").stat().st_mode & 0o077 == 0


def test_store_keeps_a_receipt_once_and_refuses_the_replay(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'loa.db'}")
    try:
        r = rc.load_and_verify(signed(receipt()), secret=SECRET)
        receipt_store.save_receipt(db, r, tz=TZ)
        with pytest.raises(rc.ReplayedReceiptError, match="replay refused"):
            receipt_store.save_receipt(db, r, tz=TZ)
        assert receipt_store.count_receipts(db) == 1
        assert receipt_store.stored_mac(db, r.id) == r.mac
        [back] = receipt_store.receipts_between(db, dt.date(2026, 12, 2), dt.date(2026, 12, 2))
        assert back.id == r.id and back.note == "Loa thôn Tả Phìn rè"
        assert receipt_store.receipts_between(db, dt.date(2026, 12, 3), dt.date(2026, 12, 9)) == []
        assert set(receipt_store.last_receipt_at(db)) == {"y-ty-loa"}
    finally:
        db.close()


def test_emergency_receipt_counts_for_the_local_day_it_was_issued() -> None:
    late = dt.datetime(2026, 12, 2, 18, 30, tzinfo=dt.UTC)  # 01:30 on the 3rd in Hà Nội
    assert receipt_store.program_day("02641/emergency/7", late, TZ) == dt.date(2026, 12, 3)
    assert receipt_store.program_day("02641/2026-12-02/evening", late, TZ) == dt.date(2026, 12, 2)
