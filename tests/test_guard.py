"""The broadcast policy guard: each rule, the commune's rules over the deployment's, and [policy] files."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.broadcast.guard import (
    Airing,
    airing_of_plan,
    airing_of_program,
    check_airing,
    check_plans,
    check_replays,
    overlaps_quiet_hours,
    policy_for,
    refused,
)
from pipeline.broadcast.replay import replay_times
from pipeline.deployment import load_deployment
from pipeline.errors import ConfigError
from pipeline.models import Bulletin, Commune, Deployment, PlannedBulletin, Policy, Program, ProgramPlan, Segment, Slot
from pipeline.plan import PROGRAM_OVERHEAD_MS
from tests.conftest import CliResult, Project

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
QUIET = Policy(quiet_hours=(dt.time(22, 0), dt.time(5, 0)))
DAY = dt.date(2026, 12, 1)
LATE = Slot("late", dt.time(22, 30), 15)
EVENING = Slot("evening", dt.time(17, 0), 15)
DAWN = Slot("dawn", dt.time(4, 50), 15)
Y_TY = Commune("02641", "Y Tý", "bat-xat", ("vi", "hmn"), (EVENING, LATE))


def bulletin(bid: int, tier: str) -> Bulletin:
    return Bulletin(f"Tin {bid}", "notice", tier, "UBND", "", DAY, DAY, ("all",), ("vi", "hmn"), "x", id=bid)


def plan(slot: Slot, *tiers: str, languages: tuple[str, ...] = ("vi", "hmn"), ms: int = 60_000) -> ProgramPlan:
    items = tuple(PlannedBulletin(bulletin(i, t), languages, ms) for i, t in enumerate(tiers, start=1))
    return ProgramPlan(DAY, Y_TY, slot, items)


def rules(plan_: ProgramPlan, policy: Policy) -> list[str]:
    return [v.rule for v in check_airing(airing_of_plan(plan_, tz=HCM), policy, tz=HCM)]


def test_quiet_hours_refuse_a_non_emergency_slot() -> None:
    [v] = check_airing(airing_of_plan(plan(LATE, "normal"), tz=HCM), QUIET, tz=HCM)
    assert (v.rule, v.commune, v.what, v.refuse) == ("quiet_hours", "02641", "02641/2026-12-01/late", True)
    assert "airs 22:30–22:31, within the quiet hours 22:00–05:00 when only emergencies air" in v.message
    assert "trong giờ yên tĩnh 22:00–05:00 (chỉ phát tin khẩn cấp)" in v.message_vi
    assert rules(plan(LATE), QUIET) == ["quiet_hours"]  # greeting and closing alone are not an emergency
    assert rules(plan(LATE, "priority", "emergency"), QUIET) == ["quiet_hours"]
    assert rules(plan(LATE, "emergency"), QUIET) == []  # only emergencies: allowed
    assert rules(plan(EVENING, "normal"), QUIET) == []
    assert rules(plan(LATE, "normal"), Policy()) == []  # no quiet hours, no rule


def test_a_program_that_runs_into_quiet_hours_is_refused_too() -> None:
    before = Slot("before", dt.time(21, 50), 30)
    assert rules(plan(before, "normal", ms=60_000), QUIET) == []  # ends 21:51:40
    assert rules(plan(before, "normal", ms=12 * 60_000), QUIET) == ["quiet_hours"]  # runs past 22:00
    assert rules(plan(DAWN, "normal"), QUIET) == ["quiet_hours"]  # starts 04:50, before the window ends
    assert not overlaps_quiet_hours(
        dt.datetime(2026, 12, 1, 5, 0, tzinfo=HCM),
        dt.datetime(2026, 12, 1, 6, 0, tzinfo=HCM),
        QUIET.quiet_hours or (dt.time(), dt.time()),
        HCM,
    )
    noon = (dt.time(11, 30), dt.time(13, 30))  # a window that does not cross midnight
    assert overlaps_quiet_hours(
        dt.datetime(2026, 12, 1, 12, 0, tzinfo=HCM), dt.datetime(2026, 12, 1, 12, 10, tzinfo=HCM), noon, HCM
    )
    # the window is local time, whatever zone the start is given in
    utc_start = dt.datetime(2026, 12, 1, 15, 30, tzinfo=dt.UTC)  # 22:30 in Hà Nội
    airing = Airing("02641", "x", utc_start, 60_000)
    assert [v.rule for v in check_airing(airing, QUIET, tz=HCM)] == ["quiet_hours"]


def test_emergency_dispatches_air_in_quiet_hours() -> None:
    airing = Airing(
        "02641", "02641/emergency/5", dt.datetime(2026, 12, 1, 23, 0, tzinfo=HCM), 120_000, kind="emergency"
    )
    assert check_airing(airing, QUIET, tz=HCM) == []


def test_longest_program_per_slot() -> None:
    policy = Policy(max_program_minutes=5)
    fits = 5 * 60_000 - PROGRAM_OVERHEAD_MS
    assert rules(plan(EVENING, "normal", ms=fits), policy) == []
    [v] = check_airing(airing_of_plan(plan(EVENING, "normal", ms=fits + 1000), tz=HCM), policy, tz=HCM)
    assert v.rule == "max_program_minutes" and "5.0 min is longer than the 5 min a program may run" in v.message
    emergency = Airing("02641", "e", dt.datetime(2026, 12, 1, 9, tzinfo=HCM), 30 * 60_000, kind="emergency")
    assert check_airing(emergency, policy, tz=HCM) == []


def test_required_languages_are_reported_not_refused() -> None:
    policy = Policy(required_languages=("vi", "hmn"))
    [v] = check_airing(airing_of_plan(plan(EVENING, "normal", languages=("vi",)), tz=HCM), policy, tz=HCM)
    assert (v.rule, v.refuse) == ("required_languages", False)
    assert "nothing in hmn" in v.message and "thiếu Tiếng Mông" in v.message_vi
    assert refused([v]) == []
    assert rules(plan(EVENING, "normal"), policy) == []
    assert rules(plan(EVENING), policy) == []  # an empty program says nothing in any language


def test_most_replays_a_day() -> None:
    issued = dt.datetime(2026, 12, 1, 8, 0, tzinfo=HCM)
    times = replay_times(issued, issued + dt.timedelta(days=1), 60)
    policy = Policy(max_replays_per_day=10)
    [v] = check_replays(times, policy, commune="02641", bulletin_id=5, tz=HCM)
    assert v.rule == "max_replays_per_day" and "15 replays on 2026-12-01 in 02641, more than the 10" in v.message
    capped = replay_times(issued, issued + dt.timedelta(days=1), 60, max_per_day=10)
    assert check_replays(capped, policy, commune="02641", bulletin_id=5, tz=HCM) == []
    assert check_replays(times, Policy(), commune="02641", bulletin_id=5, tz=HCM) == []


def test_a_built_program_is_checked_as_measured() -> None:
    seg = Segment("k", Path("k.mp3"), 400_000, "speech", "vi", "t", 1, "0" * 64, bulletin_id=1)
    start = dt.datetime(2026, 12, 1, 22, 30, tzinfo=HCM)
    program = Program("02641/2026-12-01/late", "02641", DAY, "late", start, "emergency", DAY, (seg,))
    airing = airing_of_program(program)
    assert (airing.duration_ms, airing.languages, airing.all_emergency) == (400_000, ("vi",), False)
    policy = Policy(quiet_hours=QUIET.quiet_hours, max_program_minutes=6, required_languages=("vi", "hmn"))
    assert [(v.rule, v.refuse) for v in check_airing(airing, policy, tz=HCM)] == [
        ("quiet_hours", True),  # a built slot program is not known to be all emergency
        ("max_program_minutes", True),
        ("required_languages", False),
    ]
    assert [v.rule for v in check_airing(airing, Policy(max_program_minutes=6), tz=HCM)] == ["max_program_minutes"]
    assert [v.rule for v in check_airing(airing, QUIET, tz=HCM)] == ["quiet_hours"]


SCHEDULE = """
timezone = "Asia/Ho_Chi_Minh"

[defaults]
slots = [{ name = "morning", start = "05:30", max_minutes = 30 }, { name = "late", start = "22:15", max_minutes = 10 }]

[policy]
quiet_hours = ["22:00", "05:00"]
max_program_minutes = 20
required_languages = ["vi"]

[[commune]]
code = "02641"
name = "Y Tý"
languages = ["vi", "hmn"]
policy = { required_languages = ["vi", "hmn"], max_replays_per_day = 6 }

[[commune]]
code = "02695"
name = "Bản Lầu"
"""


def deployment(tmp_path: Path, text: str = SCHEDULE) -> Deployment:
    (tmp_path / "s").mkdir(exist_ok=True)
    (tmp_path / "s" / "d.toml").write_text(text, encoding="utf-8")
    return load_deployment(tmp_path / "s")


def test_policy_files_and_the_communes_rules_over_the_deployments(tmp_path: Path) -> None:
    dep = deployment(tmp_path)
    y_ty, ban_lau = dep.communes
    assert policy_for(ban_lau, dep) == Policy((dt.time(22), dt.time(5)), 20, None, ("vi",))
    assert policy_for(y_ty, dep) == Policy((dt.time(22), dt.time(5)), 20, 6, ("vi", "hmn"))
    late_y_ty = ProgramPlan(DAY, y_ty, y_ty.slots[1], (PlannedBulletin(bulletin(1, "normal"), ("vi",), 60_000),))
    morning = ProgramPlan(DAY, ban_lau, ban_lau.slots[0], (PlannedBulletin(bulletin(2, "normal"), ("vi",), 60_000),))
    found = check_plans([late_y_ty, morning], dep, tz=HCM)
    assert [(v.commune, v.rule, v.refuse) for v in found] == [
        ("02641", "quiet_hours", True),
        ("02641", "required_languages", False),
    ]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'quiet_hours = ["22:00", "05:00"]',
            'quiet_hours = ["22h", "05:00"]',
            "policy.quiet_hours: write quiet_hours as",
        ),
        (
            'required_languages = ["vi"]\n',
            'required_languages = ["fr"]\n',
            "policy.required_languages: unknown language 'fr'",
        ),
        ("max_program_minutes = 20", "max_program_minutes = 0", "policy.max_program_minutes"),
        ("max_program_minutes = 20", "max_replays_per_day = -1", "policy.max_replays_per_day"),
        ("max_program_minutes = 20", "quiet = 1", "policy.quiet: Extra inputs are not permitted"),
    ],
)
def test_a_bad_policy_names_the_field(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        deployment(tmp_path, SCHEDULE.replace(old, new))


def test_loa_policy_check_plans_a_day_and_names_what_breaks_a_rule(
    small: Project, small_cli: Callable[..., CliResult]
) -> None:
    from tests.conftest import SMALL_DEPLOYMENT, add_bulletin

    schedule = small.root / "schedules" / "small.toml"
    assert small_cli("policy", "check", "--date", "2026-12-01").code == 0
    late = SMALL_DEPLOYMENT.replace(
        '{ name = "morning", start = "05:30", max_minutes = 10 },',
        '{ name = "morning", start = "05:30", max_minutes = 10 },\n'
        '  { name = "late", start = "22:30", max_minutes = 10 },',
    )
    schedule.write_text(
        late.replace(
            "[[group]]",
            '[policy]\nquiet_hours = ["22:00", "05:00"]\nrequired_languages = ["vi", "hmn"]\n\n[[group]]',
            1,
        ),
        encoding="utf-8",
    )
    day = dt.datetime.now(HCM).date() + dt.timedelta(days=1)
    add_bulletin(small, "Họp thôn.", priority="normal")
    r = small_cli("policy", "check", "--date", day.isoformat(), "--json")
    assert r.code == 2 and "the broadcast rules refuse 2 (rules: quiet_hours)" in r.err
    found = r.json()
    assert isinstance(found, list)
    assert {(v["commune"], v["rule"], v["refuse"]) for v in found} >= {
        ("02641", "quiet_hours", True),
        ("02695", "quiet_hours", True),
        ("02695", "required_languages", False),  # Bản Lầu hears Vietnamese only
    }
    assert small_cli("policy", "check", "--date", "tomorrow").code == 2
