"""A reader's queue: planned by the orchestrator, ordered by first airing, its deadline and
counts; the web page and the submission through the lifecycle; the reading length check."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline import lifecycle
from pipeline.models import Bulletin, Commune, Deployment
from pipeline.produce import Producer
from pipeline.readings import expected_ms, length_warning, nightly_before, reading_queue
from pipeline.store import Database
from pipeline.store import recordings as recording_store
from pipeline.store import users as user_store
from tests import audio_fixtures as fx
from tests.conftest import Project
from tests.test_readers import recording
from tests.web_support import Web, csrf_of

Y_TY, BAN_LAU = "02641", "02695"  # Y Tý: vi, hmn; Bản Lầu: vi only; slots 05:30 daily, 17:00 Mon–Sat


def bulletin(title: str, targets: tuple[str, ...], start: dt.date, end: dt.date, body: str = "Nội dung.") -> Bulletin:
    return Bulletin(
        title=title,
        category="notice",
        priority="routine",
        source="UBND xã",
        reference="",
        valid_from=start,
        valid_until=end,
        targets=targets,
        languages=("vi", "hmn"),
        body=body,
    )


def added(db: Database, b: Bulletin) -> int:
    bid = lifecycle.submit(db, lifecycle.cli(), b).bulletin.id
    assert bid is not None
    return bid


def airings(commune: Commune, days: list[dt.date]) -> int:
    return sum(1 for d in days for s in commune.slots if s.runs_on(d))


@pytest.fixture
def world(small: Project) -> tuple[Producer, Database, Deployment]:
    db = small.db()
    return Producer(settings=small.settings, deployment=small.deployment, db=db), db, small.deployment


def test_queue_is_ordered_by_first_airing_with_the_nightly_deadline_and_the_counts(
    world: tuple[Producer, Database, Deployment],
) -> None:
    producer, db, deployment = world
    tz = producer.settings.tz
    today = dt.datetime.now(tz).date()
    now = dt.datetime.combine(today, dt.time(12, 0), tzinfo=tz)  # tomorrow was built at 01:00 today
    d = [today + dt.timedelta(days=i) for i in range(8)]
    later = added(db, bulletin("Sau", (Y_TY,), d[3], d[4]))
    sooner = added(db, bulletin("Trước", ("all",), d[2], d[2]))
    built = added(db, bulletin("Đã dựng", (Y_TY,), d[1], d[1]))  # only tomorrow: built already, cannot make it
    lifecycle.approve(db, lifecycle.cli(), later)  # approved and drafts alike
    gone = added(db, bulletin("Thu hồi", (Y_TY,), d[2], d[5]))
    lifecycle.withdraw(db, lifecycle.cli(), gone)

    q = reading_queue(producer, languages=frozenset({"hmn"}), communes=None, now=now, days=7)
    assert [(e.bulletin.id, e.language) for e in q] == [(sooner, "hmn"), (later, "hmn")]
    first, second = q
    y_ty = deployment.commune(Y_TY)
    assert y_ty is not None
    assert first.first_air == dt.datetime.combine(d[2], dt.time(5, 30), tzinfo=tz)
    assert first.deadline == dt.datetime.combine(d[1], dt.time(1, 0), tzinfo=tz)  # the nightly that builds d[2]
    assert (first.communes, first.slots) == ((Y_TY,), airings(y_ty, [d[2]]))  # Bản Lầu has no Mông
    assert second.deadline == nightly_before(d[3], nightly=dt.time(1, 0), tz=tz)
    assert (second.communes, second.slots) == ((Y_TY,), airings(y_ty, [d[3], d[4]]))
    assert built not in {e.bulletin.id for e in q}

    # Vietnamese: a reading is wanted too (the synthetic voice is the fallback), in both communes
    ban_lau = deployment.commune(BAN_LAU)
    assert ban_lau is not None
    vi = reading_queue(producer, languages=frozenset({"vi"}), communes=None, now=now, days=7)
    [vi_sooner] = [e for e in vi if e.bulletin.id == sooner]
    assert vi_sooner.communes == (Y_TY, BAN_LAU)
    assert vi_sooner.slots == airings(y_ty, [d[2]]) + airings(ban_lau, [d[2]])

    # the scope: Bản Lầu only → no Mông to read; a reading attached → off the queue
    assert reading_queue(producer, languages=frozenset({"hmn"}), communes=frozenset({BAN_LAU}), now=now, days=7) == []
    lifecycle.attach_recording(db, lifecycle.cli(), recording(sooner))
    q = reading_queue(producer, languages=frozenset({"hmn"}), communes=None, now=now, days=7)
    assert [e.bulletin.id for e in q] == [later]


def test_a_policy_refused_program_and_a_later_nightly_time(world: tuple[Producer, Database, Deployment]) -> None:
    producer, db, _ = world
    tz = producer.settings.tz
    today = dt.datetime.now(tz).date()
    bid = added(db, bulletin("Một ngày", (Y_TY,), today + dt.timedelta(days=2), today + dt.timedelta(days=2)))
    nightly = producer.settings.nightly.model_copy(update={"time": "23:30"})
    late = Producer(
        settings=producer.settings.model_copy(update={"nightly": nightly}), deployment=producer.deployment, db=db
    )
    now = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(23, 0), tzinfo=tz)
    [e] = reading_queue(late, languages=frozenset({"hmn"}), communes=None, now=now, days=3)
    assert e.bulletin.id == bid
    assert e.deadline == dt.datetime.combine(today + dt.timedelta(days=1), dt.time(23, 30), tzinfo=tz)
    after = now + dt.timedelta(hours=1)  # the nightly ran: nothing left a reading could make
    assert reading_queue(late, languages=frozenset({"hmn"}), communes=None, now=after, days=3) == []


def test_length_warning_band() -> None:
    assert length_warning(1_000, 10_000, low=0.5, high=2.5) == "reading_short"
    assert length_warning(6_000, 10_000, low=0.5, high=2.5) is None
    assert length_warning(30_000, 10_000, low=0.5, high=2.5) == "reading_long"
    b = bulletin("Tiêu đề", (Y_TY,), dt.date.today(), dt.date.today(), body="x" * 158)
    assert expected_ms(b, spoken=lambda s: s) == (len("Tiêu đề. ") + 158) * 1000 // 16


@pytest.fixture
def reader_web(web: Web) -> Web:
    user_store.add_user(
        web.db, "doc-mong", password_hash=user_store.user_with_hash(web.db, "duyet")[1],  # type: ignore[index]
        role="reader", languages=("hmn",), scope=(Y_TY,),
    )  # fmt: skip
    user_store.add_user(
        web.db, "doc-banlau", password_hash=user_store.user_with_hash(web.db, "duyet")[1],  # type: ignore[index]
        role="reader", languages=("hmn", "vi"), scope=(BAN_LAU,),
    )  # fmt: skip
    return web


def test_the_queue_page_and_a_submitted_file_through_the_lifecycle(reader_web: Web, tmp_path: Path) -> None:
    web = reader_web
    tz = web.project.settings.tz
    today = dt.datetime.now(tz).date()
    body = "Thôn Tả Phìn họp lúc 7 giờ 30 về gia hạn thẻ bảo hiểm y tế. " * 4
    soon = added(
        web.db, bulletin("Họp thôn", (Y_TY,), today + dt.timedelta(days=2), today + dt.timedelta(days=5), body)
    )
    lifecycle.approve(web.db, lifecycle.cli(), soon)
    later = added(web.db, bulletin("Tiêm phòng", (Y_TY,), today + dt.timedelta(days=4), today + dt.timedelta(days=4)))
    doc = web.client("doc-mong")
    page = doc.get("/readings")
    assert page.status_code == 200
    assert page.text.index(f'id="reading-{soon}-hmn"') < page.text.index(f'id="reading-{later}-hmn"')
    assert "Thôn Tả Phìn họp lúc 7 giờ 30" in page.text and 'class="reading-text"' in page.text
    csrf = csrf_of(page.text)
    wav = fx.sine(tmp_path / "doc.wav", seconds=1.0)
    with wav.open("rb") as f:
        r = doc.post(
            f"/readings/{soon}",
            data={"csrf_token": csrf, "language": "hmn", "transcript": "Zoo zos Tả Phìn"},
            files={"file": ("doc.wav", f, "audio/wav")},
        )
    assert r.status_code == 303, r.text
    assert "ok=recording_redraft" in r.headers["location"] and "reading_short" in r.headers["location"]
    shown = doc.get(r.headers["location"])
    assert "ngắn hơn nhiều" in shown.text
    assert f'id="reading-{soon}-hmn"' not in shown.text and f'id="reading-{later}-hmn"' in shown.text
    rec = recording_store.current_recordings(web.db, [soon])[(soon, "hmn")]
    assert rec.transcript == "Zoo zos Tả Phìn"
    # the approver's page: back to draft, the length warning and the text as read
    approver = web.client("duyet")
    bpage = approver.get(f"/bulletins/{soon}")
    assert 'id="length-warning-hmn"' in bpage.text and "Zoo zos Tả Phìn" in bpage.text
    assert "Nháp" in bpage.text or "nháp" in bpage.text


def test_a_reader_never_sees_or_changes_outside_their_scope_or_languages(reader_web: Web, tmp_path: Path) -> None:
    web = reader_web
    today = dt.datetime.now(web.project.settings.tz).date()
    y_ty = added(web.db, bulletin("Y Tý", (Y_TY,), today + dt.timedelta(days=2), today + dt.timedelta(days=3)))
    banlau = web.client("doc-banlau")  # reads hmn and vi, for Bản Lầu only
    page = banlau.get("/readings")
    assert f"reading-{y_ty}-" not in page.text
    csrf = csrf_of(page.text)
    wav = fx.sine(tmp_path / "x.wav", seconds=1.0)
    for lang in ("hmn", "vi"):
        with wav.open("rb") as f:
            r = banlau.post(
                f"/readings/{y_ty}",
                data={"csrf_token": csrf, "language": lang},
                files={"file": ("x.wav", f, "audio/wav")},
            )
        assert r.status_code == 404
    mong = web.client("doc-mong")  # Y Tý, Mông only: Vietnamese is not theirs
    csrf = csrf_of(mong.get("/readings").text)
    with wav.open("rb") as f:
        r = mong.post(
            f"/readings/{y_ty}", data={"csrf_token": csrf, "language": "vi"}, files={"file": ("x.wav", f, "audio/wav")}
        )
    assert r.status_code == 400 and "«vi»" in r.text
    assert recording_store.current_recordings(web.db, [y_ty]) == {}
    assert mong.get(f"/bulletins/{y_ty}/recordings/hmn").status_code == 403


def test_approving_with_a_language_missing_needs_a_second_confirmation_of_exactly_those(
    reader_web: Web, tmp_path: Path
) -> None:
    from pipeline.store import audit

    web = reader_web
    today = dt.datetime.now(web.project.settings.tz).date()
    bid = added(web.db, bulletin("Họp", ("all",), today + dt.timedelta(days=2), today + dt.timedelta(days=3)))
    approver = web.client("duyet")
    page = approver.get(f"/bulletins/{bid}/approve")
    assert 'id="need-hmn" class="missing"' in page.text and 'id="need-vi" class="tts"' in page.text
    assert 'name="confirm_missing" value="hmn"' in page.text
    csrf = csrf_of(page.text)
    for sent in ({}, {"confirm_missing": "vi"}):  # no second confirmation, or one of something else
        r = approver.post(f"/bulletins/{bid}/approve", data={"csrf_token": csrf, "action_token": "a" * 32} | sent)
        assert r.status_code == 303 and r.headers["location"] == f"/bulletins/{bid}/approve"
    assert audit.entries(web.db, action="bulletin.approved") == []
    form = {"csrf_token": csrf, "action_token": "b" * 32, "confirm_missing": "hmn"}
    assert approver.post(f"/bulletins/{bid}/approve", data=form).status_code == 303
    [entry] = audit.entries(web.db, action="bulletin.approved_missing")
    assert entry.detail == "hmn" and entry.actor == "duyet"
    # with the reading there, nothing is missing: the confirmation lists it with a player
    other = added(web.db, bulletin("Khác", (Y_TY,), today + dt.timedelta(days=2), today + dt.timedelta(days=3)))
    lifecycle.attach_recording(web.db, lifecycle.cli(), recording(other))
    page = approver.get(f"/bulletins/{other}/approve")
    assert 'id="need-hmn" class="recorded"' in page.text and f'src="/bulletins/{other}/recordings/hmn"' in page.text
    assert "confirm_missing" not in page.text
