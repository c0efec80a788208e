"""Planning: which bulletins air where and when, in which order and languages."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from pipeline.models import Bulletin, Commune, Decision, ProgramPlan, Recording, Slot
from pipeline.plan import PROGRAM_OVERHEAD_MS, SPOKEN_CHARS_PER_SECOND, overrun_ms, plan_commune_day, plan_program

UTC = dt.UTC
MORNING = Slot("morning", dt.time(5, 30), 10)
EVENING = Slot("evening", dt.time(17, 0), 10, days=("mon", "tue", "wed", "thu", "fri", "sat"))
Y_TY = Commune("02641", "Y Tý", "bat-xat", ("vi", "hmn", "pcc"), (EVENING, MORNING))
BAN_LAU = Commune("02695", "Bản Lầu", None, ("vi",), (MORNING, EVENING))
TUESDAY = dt.date(2026, 12, 1)
SUNDAY = dt.date(2026, 12, 6)


def bulletin(bid: int, *, priority: str = "routine", chars: int = 100, targets: tuple[str, ...] = ("all",),
             status: str = "approved", approved_minute: int = 0, valid: tuple[int, int] = (1, 14),
             languages: tuple[str, ...] = ("vi", "pcc", "hmn")) -> Bulletin:  # fmt: skip
    return Bulletin(
        title=f"Bản tin {bid}", category="notice", priority=priority, source="UBND", reference="",
        valid_from=dt.date(2026, 12, valid[0]), valid_until=dt.date(2026, 12, valid[1]), targets=targets,
        languages=languages, body="a" * chars, id=bid, status=status,
        approved_at=dt.datetime(2026, 11, 30, 8, approved_minute, tzinfo=UTC),
    )  # fmt: skip


def plan(commune: Commune, day: dt.date, bulletins: list[Bulletin], recordings: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
    return plan_commune_day(day, commune, bulletins=bulletins, recordings=recordings or {}, spoken=lambda t: t)


def ids(p) -> list[int]:  # type: ignore[no-untyped-def]
    return [i.bulletin.id for i in p.items]


def test_order_priority_then_approval_time_and_slots_in_time_order() -> None:
    bs = [bulletin(1, approved_minute=5), bulletin(2, priority="urgent", approved_minute=9),
          bulletin(3, priority="emergency", approved_minute=30), bulletin(4, approved_minute=1)]  # fmt: skip
    plans = plan(Y_TY, TUESDAY, bs)
    assert [p.slot.name for p in plans] == ["morning", "evening"]
    assert ids(plans[0]) == [3, 2, 4, 1]


def test_validity_both_ends_inclusive_and_status() -> None:
    bs = [bulletin(1, valid=(1, 1)), bulletin(2, valid=(2, 14)), bulletin(3, status="draft"),
          bulletin(4, status="withdrawn"), bulletin(5, valid=(1, 14))]  # fmt: skip
    assert ids(plan(Y_TY, TUESDAY, bs)[0]) == [1, 5]
    assert ids(plan(Y_TY, dt.date(2026, 12, 14), bs)[0]) == [2, 5]
    assert ids(plan(Y_TY, dt.date(2026, 12, 15), bs)[0]) == []


def test_targets_all_group_and_code() -> None:
    bs = [bulletin(1, targets=("bat-xat",)), bulletin(2, targets=("02695",)), bulletin(3, targets=("all",))]
    assert ids(plan(Y_TY, TUESDAY, bs)[0]) == [1, 3]
    assert ids(plan(BAN_LAU, TUESDAY, bs)[0]) == [2, 3]


def test_languages_follow_the_communes_order() -> None:
    p = plan(Y_TY, TUESDAY, [bulletin(1, languages=("pcc", "hmn", "vi"))])[0]
    assert p.items[0].languages == ("vi", "hmn", "pcc")
    only_vi = plan(BAN_LAU, TUESDAY, [bulletin(1)])[0]
    assert only_vi.items[0].languages == ("vi",)  # a commune with no ethnic languages
    unheard = plan(BAN_LAU, TUESDAY, [bulletin(1, languages=("hmn",))])[0]
    assert unheard.items == ()  # nothing it can air, and that is reported, not silent
    assert [(d.bulletin.id, d.until_slot) for d in unheard.deferred] == [(1, None)]
    assert "none of the commune's languages (vi)" in unheard.deferred[0].reason


def test_a_day_the_slot_does_not_run() -> None:
    assert [p.slot.name for p in plan(Y_TY, SUNDAY, [bulletin(1)])] == ["morning"]


def test_empty_slot_still_gets_a_program() -> None:
    plans = plan(Y_TY, TUESDAY, [])
    assert len(plans) == 2 and all(p.items == () and p.deferred == () for p in plans)


def test_overflow_is_deferred_to_the_next_slot_and_goes_first_there() -> None:
    budget_chars = (MORNING.max_minutes * 60_000 - PROGRAM_OVERHEAD_MS) * 16 // 1000
    big = budget_chars * 6 // 10  # two of them do not fit in one slot
    bs = [bulletin(1, chars=big, approved_minute=1), bulletin(2, chars=big, approved_minute=2),
          bulletin(3, chars=100, approved_minute=3, languages=("vi",))]  # fmt: skip
    morning, evening = plan(BAN_LAU, TUESDAY, bs)
    assert ids(morning) == [1, 3]
    assert [(d.bulletin.id, d.until_slot) for d in morning.deferred] == [(2, "evening")]
    assert ids(evening)[0] == 2  # the deferred bulletin airs first in the next slot
    assert [(d.bulletin.id, d.until_slot) for d in evening.deferred] == [(1, "2026-12-02 morning")]


def test_emergency_is_never_deferred() -> None:
    huge = 40_000
    bs = [bulletin(1, chars=huge, priority="emergency"), bulletin(2, chars=huge, priority="emergency")]
    morning = plan(BAN_LAU, TUESDAY, bs)[0]
    assert ids(morning) == [1, 2] and morning.deferred == ()


def test_recording_durations_count_in_the_estimate() -> None:
    rec = Recording(1, "hmn", __import__("pathlib").Path("x"), 300_000, "0" * 64, "x.wav")
    with_rec = plan(Y_TY, TUESDAY, [bulletin(1)], {(1, "hmn"): rec})[0]
    without = plan(Y_TY, TUESDAY, [bulletin(1)])[0]
    assert with_rec.estimated_ms - without.estimated_ms >= 300_000


def two_that_do_not_fit(**kw) -> list[Bulletin]:  # type: ignore[no-untyped-def]
    big = (MORNING.max_minutes * 60_000 - PROGRAM_OVERHEAD_MS) * SPOKEN_CHARS_PER_SECOND // 1000 * 6 // 10
    return [bulletin(1, chars=big, approved_minute=1, **kw), bulletin(2, chars=big, approved_minute=2, **kw)]


def test_deferral_from_the_last_slot_goes_to_the_next_day_the_commune_has_a_slot() -> None:
    evenings_only = Commune("02695", "Bản Lầu", None, ("vi",), (EVENING,))
    saturday = dt.date(2026, 12, 5)  # evening runs mon-sat: the next one is Monday's
    [p] = plan(evenings_only, saturday, two_that_do_not_fit())
    assert [(d.bulletin.id, d.until_slot) for d in p.deferred] == [(2, "2026-12-07 evening")]


def test_deferral_on_the_last_valid_day_says_it_will_not_air_again() -> None:
    last_day = dt.date(2026, 12, 14)
    morning, evening = plan(BAN_LAU, last_day, two_that_do_not_fit())
    assert [(d.bulletin.id, d.until_slot) for d in morning.deferred] == [(2, "evening")]
    assert [(d.bulletin.id, d.until_slot) for d in evening.deferred] == [(1, None)]
    assert "valid until 2026-12-14, it will not air again" in evening.deferred[0].reason


def test_known_durations_replace_the_estimate() -> None:
    bs = two_that_do_not_fit()
    assert ids(plan(BAN_LAU, TUESDAY, bs)[0]) == [1]
    measured = plan_commune_day(TUESDAY, BAN_LAU, bulletins=bs, recordings={}, spoken=lambda t: t,
                                durations={(1, "vi"): 60_000, (2, "vi"): 60_000})  # fmt: skip
    assert ids(measured[0]) == [1, 2] and measured[0].deferred == ()
    assert measured[0].estimated_ms == 2 * (60_000 + 8_000)


def test_emergency_overrun_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    bs = [bulletin(1, chars=40_000, priority="emergency"), bulletin(2, chars=100)]
    with caplog.at_level(logging.WARNING, logger="pipeline.plan"):
        morning = plan(BAN_LAU, TUESDAY, bs)[0]
    assert ids(morning) == [1] and [d.bulletin.id for d in morning.deferred] == [2]
    assert overrun_ms(morning) > 0
    assert "02695 2026-12-01 morning: emergency bulletins overrun the 10 min slot" in caplog.text
    assert overrun_ms(plan(BAN_LAU, TUESDAY, [bulletin(2, chars=100)])[0]) == 0


def test_plan_program_is_one_slot_of_the_day() -> None:
    bs = two_that_do_not_fit()
    evening = plan_program(TUESDAY, BAN_LAU, "evening", bulletins=bs, recordings={}, spoken=lambda t: t)
    assert evening is not None and ids(evening) == [2]  # deferred from the morning, so first
    assert plan_program(SUNDAY, BAN_LAU, "evening", bulletins=bs, recordings={}, spoken=lambda t: t) is None


# --- tiers and operator decisions (issue 16) ---------------------------------------


def test_priority_goes_first_and_is_never_deferred_normal_items_make_room(caplog: pytest.LogCaptureFixture) -> None:
    budget_chars = (MORNING.max_minutes * 60_000 - PROGRAM_OVERHEAD_MS) * SPOKEN_CHARS_PER_SECOND // 1000
    normal = [bulletin(1, chars=budget_chars // 3, approved_minute=1, priority="normal"),
              bulletin(2, chars=budget_chars // 3, approved_minute=2, priority="normal")]  # fmt: skip
    # approved last, longer than the whole slot: still airs in the next slot, first
    prio = bulletin(3, chars=budget_chars + 1000, approved_minute=50, priority="priority")
    with caplog.at_level(logging.WARNING, logger="pipeline.plan"):
        morning, evening = plan(BAN_LAU, TUESDAY, [*normal, prio])
    assert ids(morning) == [3]
    assert [(d.bulletin.id, d.until_slot) for d in morning.deferred] == [(1, "evening"), (2, "evening")]
    assert all("left of 10 min" in d.reason for d in morning.deferred)
    assert overrun_ms(morning) > 0
    assert "02695 2026-12-01 morning: priority bulletins overrun the 10 min slot" in caplog.text
    # every slot airs what is valid: the priority item fills the evening too, the others wait a day
    assert ids(evening) == [3]
    assert [(d.bulletin.id, d.until_slot) for d in evening.deferred] == [
        (1, "2026-12-02 morning"),
        (2, "2026-12-02 morning"),
    ]


def test_priority_fills_before_normal_when_both_fit_partly() -> None:
    budget_chars = (MORNING.max_minutes * 60_000 - PROGRAM_OVERHEAD_MS) * SPOKEN_CHARS_PER_SECOND // 1000
    bs = [bulletin(1, chars=budget_chars * 6 // 10, approved_minute=1, priority="normal"),
          bulletin(2, chars=budget_chars * 6 // 10, approved_minute=9, priority="priority")]  # fmt: skip
    morning = plan(BAN_LAU, TUESDAY, bs)[0]
    assert ids(morning) == [2] and [d.bulletin.id for d in morning.deferred] == [1]


def decided(bid: int, decision: str, until: dt.date | None = None, reason: str = "") -> Decision:
    return Decision(bid, BAN_LAU.code, decision, until, reason, "user:op")


def test_operator_decisions_declined_deferred_accepted() -> None:
    bs = [bulletin(1, priority="normal"), bulletin(2, priority="normal"), bulletin(3, priority="normal"),
          bulletin(4, priority="normal")]  # fmt: skip
    decisions = {
        (1, BAN_LAU.code): decided(1, "declined", reason="Xã đã họp dân về việc này"),
        (2, BAN_LAU.code): decided(2, "deferred", dt.date(2026, 12, 3), "chờ họp thôn"),
        (3, BAN_LAU.code): decided(3, "accepted"),
        (4, "02641"): decided(4, "declined", reason="khác xã"),  # another commune's decision
    }

    def on(day: dt.date) -> list[ProgramPlan]:
        return plan_commune_day(day, BAN_LAU, bulletins=bs, recordings={}, spoken=lambda t: t, decisions=decisions)

    morning = on(TUESDAY)[0]
    assert ids(morning) == [3, 4]
    held = {d.bulletin.id: d for d in morning.deferred}
    assert (
        held[1].until_slot is None and held[1].reason == "declined by the commune (user:op): Xã đã họp dân về việc này"
    )
    assert held[2].until_slot == "2026-12-03 morning"
    assert held[2].reason == "deferred by the commune to 2026-12-03; chờ họp thôn"
    assert ids(on(dt.date(2026, 12, 2))[0]) == [3, 4]  # still before the date
    assert ids(on(dt.date(2026, 12, 3))[0]) == [2, 3, 4]  # from the date on it airs
    assert 1 not in ids(on(dt.date(2026, 12, 10))[0])
    # Y Tý is bound by its own decision (4 declined), not by Bản Lầu's
    assert ids(plan_commune_day(TUESDAY, Y_TY, bulletins=bs, recordings={}, spoken=lambda t: t,
                                decisions=decisions)[0]) == [1, 2, 3]  # fmt: skip


def test_decisions_bind_only_normal_bulletins_and_deferral_past_expiry_says_so() -> None:
    bs = [bulletin(1, priority="priority"), bulletin(2, priority="normal", valid=(1, 2))]
    decisions = {
        (1, BAN_LAU.code): decided(1, "declined", reason="không muốn"),
        (2, BAN_LAU.code): decided(2, "deferred", dt.date(2026, 12, 5)),
    }
    morning = plan_commune_day(TUESDAY, BAN_LAU, bulletins=bs, recordings={}, spoken=lambda t: t, decisions=decisions)[
        0
    ]
    assert ids(morning) == [1]
    [held] = morning.deferred
    assert held.until_slot is None and "after it expires" in held.reason
