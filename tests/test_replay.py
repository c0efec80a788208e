"""Emergency replays as data: the cadence field through intake and the store, and replay_times."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from pipeline.broadcast.replay import (
    DEFAULT_REPLAY_MINUTES,
    bulletin_replays,
    in_quiet_hours,
    replay_every,
    replay_times,
)
from pipeline.errors import BulletinError
from pipeline.intake import parse_bulletin
from pipeline.models import Bulletin
from pipeline.store import bulletins as store
from tests.conftest import EXAMPLES, Project
from tests.web_support import Web

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
EMERGENCY = (EXAMPLES / "05-canh-bao-lu-quet-sat-lo.md").read_text(encoding="utf-8")


def at(day: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(2026, 12, day, hh, mm, tzinfo=HCM)


def test_every_two_hours_until_expiry_not_including_it() -> None:
    times = replay_times(at(1, 8), at(1, 16), 120)
    assert times == (at(1, 10), at(1, 12), at(1, 14))  # 16:00 is the expiry: not aired
    assert replay_times(at(1, 8), at(1, 16, 1), 120)[-1] == at(1, 16)
    assert replay_times(at(1, 8), at(1, 9), 120) == ()
    assert replay_times(at(1, 8), at(1, 7), 120) == ()


def test_quiet_hours_skip_replays_but_keep_the_rhythm() -> None:
    times = replay_times(at(1, 19, 30), at(2, 9), 120, quiet=(dt.time(22, 0), dt.time(5, 0)))
    assert times == (at(1, 21, 30), at(2, 5, 30), at(2, 7, 30))
    assert in_quiet_hours(dt.time(4, 59), (dt.time(22), dt.time(5)))
    assert not in_quiet_hours(dt.time(5, 0), (dt.time(22), dt.time(5)))
    assert in_quiet_hours(dt.time(12, 30), (dt.time(12), dt.time(13)))
    assert not in_quiet_hours(dt.time(12, 30), (dt.time(12), dt.time(12)))


def test_at_most_so_many_a_local_day() -> None:
    times = replay_times(at(1, 0, 30), at(3, 0), 60, max_per_day=3)
    assert times == (at(1, 1, 30), at(1, 2, 30), at(1, 3, 30), at(2, 0, 30), at(2, 1, 30), at(2, 2, 30))


def test_times_are_in_the_local_zone_whatever_zone_the_inputs_are_in() -> None:
    issued_utc = at(1, 8).astimezone(dt.UTC)
    times = replay_times(issued_utc, at(1, 13), 120, tz=HCM)
    assert times == (at(1, 10), at(1, 12)) and all(t.tzinfo == HCM for t in times)
    # the local day for max_per_day is Vietnam's, not UTC's (07:00 local is midnight UTC)
    assert len(replay_times(at(1, 5), at(1, 10), 60, max_per_day=10, tz=HCM)) == 4


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        replay_times(dt.datetime(2026, 12, 1, 8), at(1, 9), 60)
    with pytest.raises(ValueError, match="at least 1"):
        replay_times(at(1, 8), at(1, 9), 0)
    assert len(replay_times(at(1, 0), at(30, 0), 15, limit=50)) == 50


def test_default_cadence_by_tier_and_category(project: Project) -> None:
    b = parse_bulletin(EMERGENCY, where="e.md", deployment=project.deployment).bulletin
    assert (b.priority, b.category, b.replay_every_minutes) == ("emergency", "emergency", None)
    assert replay_every(b) == DEFAULT_REPLAY_MINUTES == 120
    assert replay_every(dataclasses.replace(b, category="flood")) == 120
    assert replay_every(dataclasses.replace(b, category="storm")) == 120
    assert replay_every(dataclasses.replace(b, category="notice")) is None
    assert replay_every(dataclasses.replace(b, priority="priority")) is None
    assert replay_every(dataclasses.replace(b, category="notice", replay_every_minutes=30)) == 30


def test_the_field_through_intake_and_the_store(project: Project) -> None:
    text = EMERGENCY.replace('priority = "emergency"\n', 'priority = "emergency"\nreplay_every_minutes = 45\n')
    b = parse_bulletin(text, where="e.md", deployment=project.deployment).bulletin
    assert b.replay_every_minutes == 45
    db = project.db()
    [(stored, outcome)] = store.save_bulletins(db, [b])
    assert outcome == "added" and store.get_bulletin(db, stored.id or 0).replay_every_minutes == 45
    # a changed cadence is a new revision (it changes what airs)
    changed = dataclasses.replace(b, replay_every_minutes=60)
    assert store.save_bulletins(db, [changed])[0][1] == "revised"
    assert store.get_bulletin(db, stored.id or 0).replay_every_minutes == 60
    # without the field the stored value is None and the default applies
    plain = parse_bulletin(EMERGENCY.replace("Cảnh báo lũ quét", "Cảnh báo sạt lở"), where="f.md",
                           deployment=project.deployment).bulletin  # fmt: skip
    [(p, _)] = store.save_bulletins(db, [plain])
    assert store.get_bulletin(db, p.id or 0).replay_every_minutes is None
    issued = at(1, 8)
    assert bulletin_replays(store.get_bulletin(db, p.id or 0), issued, tz=HCM)[:2] == (at(1, 10), at(1, 12))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("replay_every_minutes = 5", "must be a whole number of minutes from 15 to 1440"),
        ("replay_every_minutes = 2000", "must be a whole number of minutes from 15 to 1440"),
        ('replay_every_minutes = "120"', "must be a whole number of minutes"),
        ("replay_every_minutes = true", "must be a whole number of minutes"),
    ],
)
def test_bad_cadence_names_the_field_and_line(project: Project, line: str, message: str) -> None:
    text = EMERGENCY.replace('priority = "emergency"\n', f'priority = "emergency"\n{line}\n')
    with pytest.raises(BulletinError) as err:
        parse_bulletin(text, where="e.md", deployment=project.deployment)
    assert str(err.value).startswith("e.md: line 5: replay_every_minutes: ") and message in str(err.value)


def test_only_emergency_bulletins_replay(project: Project) -> None:
    text = EMERGENCY.replace('priority = "emergency"\n', 'priority = "priority"\nreplay_every_minutes = 60\n')
    with pytest.raises(BulletinError, match="only emergency bulletins replay; this one is priority"):
        parse_bulletin(text, where="e.md", deployment=project.deployment)


def test_a_bulletin_without_a_cadence_in_the_past_hashes_as_before() -> None:
    b = Bulletin("t", "notice", "normal", "s", "", dt.date(2026, 12, 1), dt.date(2026, 12, 2), ("all",), ("vi",), "x")
    assert "replay_every_minutes" not in store.content_of(b)
    assert store.content_of(dataclasses.replace(b, replay_every_minutes=30))["replay_every_minutes"] == 30


def test_the_web_form_keeps_the_cadence(web: Web) -> None:
    from tests.test_web_pages import FORM, post_form

    client = web.client("bientap")
    fields = FORM | {"priority": "emergency", "category": "flood", "replay_every_minutes": "60"}
    r = post_form(client, "/bulletins/new", fields)
    assert r.status_code == 303, r.text
    [b] = store.list_bulletins(web.db)
    assert (b.priority, b.category, b.replay_every_minutes) == ("emergency", "flood", 60)
    page = client.get(f"/bulletins/{b.id}").text
    assert "mỗi 60 phút" in page and "Khẩn cấp" in page and "Lũ, lụt" in page
    assert (
        'name="replay_every_minutes" type="number" min="15" max="1440" step="1" value="60"'
        in client.get(f"/bulletins/{b.id}/edit").text
    )
    bad = post_form(client, f"/bulletins/{b.id}/edit", fields | {"replay_every_minutes": "hai giờ"})
    assert bad.status_code == 400 and "Chu kỳ phát lại phải là số phút nguyên, từ 15 đến 1440" in bad.text
    assert store.get_bulletin(web.db, b.id or 0).revision == 1
    # leaving it empty: the default, 120 minutes for a flood warning
    assert post_form(client, f"/bulletins/{b.id}/edit", fields | {"replay_every_minutes": ""}).status_code == 303
    assert store.get_bulletin(web.db, b.id or 0).replay_every_minutes is None
    assert "mỗi 120 phút" in client.get(f"/bulletins/{b.id}").text
