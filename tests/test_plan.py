"""Planning: which bulletins air where and when, in which order and languages."""

from __future__ import annotations

import datetime as dt

from pipeline.models import Bulletin, Commune, Recording, Slot
from pipeline.plan import PROGRAM_OVERHEAD_MS, plan_commune_day

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
    assert plan(BAN_LAU, TUESDAY, [bulletin(1, languages=("hmn",))])[0].items == ()  # nothing it can air


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
    assert [(d.bulletin.id, d.until_slot) for d in evening.deferred] == [(1, "2026-12-02 (next day)")]


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
