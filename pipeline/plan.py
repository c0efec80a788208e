"""Plan: which bulletins a commune hears in a slot, in which order and languages.

For a date, a commune and a slot: the approved bulletins valid on the date (both ends
inclusive) whose targets include the commune ("all", its group or its code), ordered
by tier (emergency, priority, normal: khẩn cấp, ưu tiên, thông thường), then by approval
time. A bulletin's languages in the program are the commune's languages that the bulletin
lists, in the commune's order.

The slot's ``max_minutes`` is filled with known durations (``durations``: measured from
an earlier render) or, before the first render, estimates (Vietnamese speech from the
length of its spoken form, recordings by their stored duration). What does not fit is
deferred to the next slot that runs (a later slot of the day, where deferred bulletins go
first within their priority, else the first slot of the next day that has one). Nothing is
dropped silently: every bulletin that targets the commune and is not in the program is in
``ProgramPlan.deferred`` with the reason; ``until_slot`` is None when it will not air later
(its last valid day, or it lists none of the commune's languages). Emergency and priority
bulletins (khẩn cấp, ưu tiên) are never deferred for length, even when they alone overrun the
slot (see ``overrun_ms``; a warning is logged): they go first, and the normal items that no
longer fit make room and are reported as deferred. A normal bulletin (thông thường) follows
its commune's decision (``decisions``, see ``pipeline.broadcast.decisions``): declined → not planned
there (reported with the operator's reason); deferred → not before the chosen day. A slot
with no bulletins still gets a short program (greeting, closing) so the commune's
loudspeakers keep their schedule and operators see that nothing is pending; slots that do
not run on the day get no program.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence

from pipeline.models import (
    PRIORITIES,
    TTS_LANGUAGES,
    Bulletin,
    Commune,
    Decision,
    Deferral,
    PlannedBulletin,
    ProgramPlan,
    Recording,
    Slot,
    tier_of,
)

log = logging.getLogger(__name__)

#: espeak-ng at rate 150 speaks about 16 characters of spoken-form Vietnamese a second
#: (measured on the example bulletins: 998 characters in 60.8 s, 972 in 59.8 s, 735 in 47.3 s).
SPOKEN_CHARS_PER_SECOND = 16
#: Greeting, chimes, closing and pauses around the bulletins of one program.
PROGRAM_OVERHEAD_MS = 40_000
#: Title, source, reference, pauses and the intro clip around each bulletin and language.
ITEM_OVERHEAD_MS = 8_000
#: How far ahead to look for the next day a commune has a slot.
_LOOKAHEAD_DAYS = 7

Speakable = Callable[[str], str]
#: Measured length in ms of a bulletin in one language, from an earlier render.
Durations = Mapping[tuple[int, str], int]
#: Operator decisions on normal bulletins, by (bulletin id, commune code).
Decisions = Mapping[tuple[int, str], Decision]
#: Tiers that air in the next slot whatever their length.
_NEVER_DEFERRED = frozenset({"emergency", "priority"})


def targets_commune(b: Bulletin, commune: Commune) -> bool:
    return "all" in b.targets or commune.code in b.targets or (commune.group is not None and commune.group in b.targets)


def eligible(bulletins: Sequence[Bulletin], commune: Commune, day: dt.date) -> list[Bulletin]:
    return [b for b in bulletins if b.status == "approved" and b.valid_on(day) and targets_commune(b, commune)]


def languages_for(b: Bulletin, commune: Commune) -> tuple[str, ...]:
    return tuple(lang for lang in commune.languages if lang in b.languages)


def estimate_ms(
    b: Bulletin,
    languages: Sequence[str],
    *,
    recordings: Mapping[tuple[int, str], Recording],
    spoken: Speakable,
    durations: Durations | None = None,
) -> int:
    """The time ``b`` takes in ``languages``: measured where known, else estimated.

    A language with neither a measured duration nor a recording (a recording still to
    come) counts nothing: compose leaves it out and reports it.
    """
    total = 0
    for lang in languages:
        if durations is not None and b.id is not None and (known := durations.get((b.id, lang))) is not None:
            total += known + ITEM_OVERHEAD_MS
        elif b.id is not None and (rec := recordings.get((b.id, lang))) is not None:
            total += rec.duration_ms + ITEM_OVERHEAD_MS  # a reading, Vietnamese ones included
        elif lang in TTS_LANGUAGES:
            text = spoken(f"{b.title}. {b.source}. {b.reference}. {b.body}")
            total += len(text) * 1000 // SPOKEN_CHARS_PER_SECOND + ITEM_OVERHEAD_MS
    return total


def budget_ms(slot: Slot) -> int:
    """What a slot leaves for bulletins once the greeting, chimes and closing are counted."""
    return slot.max_minutes * 60_000 - PROGRAM_OVERHEAD_MS


def overrun_ms(plan: ProgramPlan) -> int:
    """By how much the planned bulletins exceed the slot (0 when they fit).

    Only emergency and priority bulletins can make a plan overrun: they are never deferred.
    """
    return max(plan.estimated_ms - budget_ms(plan.slot), 0)


def tier(b: Bulletin) -> str:
    """The bulletin's tier (a bulletin made in code may still carry an old name such as "routine")."""
    return tier_of(b.priority) or "normal"


def _order_key(b: Bulletin, deferred_ids: set[int]) -> tuple[int, int, dt.datetime, int]:
    approved = b.approved_at or dt.datetime.max.replace(tzinfo=dt.UTC)
    return (PRIORITIES.index(tier(b)), 0 if b.id in deferred_ids else 1, approved, b.id or 0)


def _running(commune: Commune, day: dt.date) -> list[Slot]:
    return sorted((s for s in commune.slots if s.runs_on(day)), key=lambda s: s.start)


def next_slot_after(commune: Commune, day: dt.date, slot: Slot) -> tuple[dt.date, Slot] | None:
    """The slot that runs next after ``slot`` on ``day``: later that day, else on the next day that has one."""
    later = [s for s in _running(commune, day) if s.start > slot.start]
    if later:
        return day, later[0]
    for ahead in range(1, _LOOKAHEAD_DAYS + 1):
        other = day + dt.timedelta(days=ahead)
        if running := _running(commune, other):
            return other, running[0]
    return None


def _deferral(b: Bulletin, reason: str, day: dt.date, nxt: tuple[dt.date, Slot] | None) -> Deferral:
    """``b`` deferred from a slot of ``day`` whose next slot is ``nxt`` (``next_slot_after``)."""
    if nxt is None or not b.valid_on(nxt[0]):
        return Deferral(b, f"{reason}; valid until {b.valid_until}, it will not air again", None)
    other, next_slot = nxt
    return Deferral(b, reason, next_slot.name if other == day else f"{other.isoformat()} {next_slot.name}")


def _first_slot_on_or_after(commune: Commune, day: dt.date) -> str | None:
    for ahead in range(_LOOKAHEAD_DAYS + 1):
        other = day + dt.timedelta(days=ahead)
        if running := _running(commune, other):
            return f"{other.isoformat()} {running[0].name}"
    return None


def held_by_decision(b: Bulletin, commune: Commune, day: dt.date, decisions: Decisions | None) -> Deferral | None:
    """Why the commune's decision keeps a normal bulletin out of ``day``'s programs (None: it does not)."""
    if decisions is None or b.id is None or tier(b) != "normal":
        return None
    d = decisions.get((b.id, commune.code))
    if d is None or d.decision == "accepted":
        return None
    if d.decision == "declined":
        return Deferral(b, f"declined by the commune ({d.by}): {d.reason}", None, kind="declined")
    if d.decision == "deferred" and d.until is not None and day < d.until:
        note = f"; {d.reason}" if d.reason else ""
        if not b.valid_on(d.until):
            return Deferral(b, f"deferred by the commune to {d.until}, after it expires{note}", None, kind="deferred")
        return Deferral(
            b,
            f"deferred by the commune to {d.until}{note}",
            _first_slot_on_or_after(commune, d.until),
            kind="deferred",
        )
    return None


def plan_commune_day(
    day: dt.date,
    commune: Commune,
    *,
    bulletins: Sequence[Bulletin],
    recordings: Mapping[tuple[int, str], Recording],
    spoken: Speakable,
    durations: Durations | None = None,
    decisions: Decisions | None = None,
) -> list[ProgramPlan]:
    """The programs of one commune for ``day``, slot by slot in the order they air."""
    slots = _running(commune, day)
    targeted = eligible(bulletins, commune, day)
    held = {b.id: h for b in targeted if (h := held_by_decision(b, commune, day, decisions)) is not None}
    candidates = [b for b in targeted if languages_for(b, commune) and b.id not in held]
    unheard = [
        Deferral(
            b,
            f"lists {', '.join(b.languages)}, none of the commune's languages ({', '.join(commune.languages)})",
            None,
            kind="language",
        )
        for b in targeted
        if not languages_for(b, commune) and b.id not in held
    ] + list(held.values())
    estimates = {
        b.id: estimate_ms(b, languages_for(b, commune), recordings=recordings, spoken=spoken, durations=durations)
        for b in candidates
    }
    deferred_ids: set[int] = set()
    plans: list[ProgramPlan] = []
    for slot in slots:
        budget = budget_ms(slot)
        after = next_slot_after(commune, day, slot)  # where what this slot defers goes
        items: list[PlannedBulletin] = []
        deferred: list[Deferral] = []
        used = 0
        for b in sorted(candidates, key=lambda b: _order_key(b, deferred_ids)):
            need = estimates[b.id]
            if used + need <= budget or tier(b) in _NEVER_DEFERRED:
                items.append(PlannedBulletin(b, languages_for(b, commune), need))
                used += need
                deferred_ids.discard(b.id or 0)
            else:
                reason = (
                    f"needs about {need // 1000} s, {max(budget - used, 0) // 1000} s left of {slot.max_minutes} min"
                )
                deferred.append(_deferral(b, reason, day, after))
                deferred_ids.add(b.id or 0)
        plan = ProgramPlan(day, commune, slot, tuple(items), tuple(deferred + unheard))
        if over := overrun_ms(plan):
            log.warning(
                "%s %s %s: %s bulletins overrun the %d min slot by about %d s",
                commune.code,
                day,
                slot.name,
                "emergency" if any(tier(i.bulletin) == "emergency" for i in items) else "priority",
                slot.max_minutes,
                over // 1000,
            )
        plans.append(plan)
    return plans


def plan_program(
    day: dt.date,
    commune: Commune,
    slot: str,
    *,
    bulletins: Sequence[Bulletin],
    recordings: Mapping[tuple[int, str], Recording],
    spoken: Speakable,
    durations: Durations | None = None,
    decisions: Decisions | None = None,
) -> ProgramPlan | None:
    """The plan of one slot (None when it does not run on ``day``).

    The whole day is planned, since what an earlier slot defers goes first in a later one.
    """
    plans = plan_commune_day(
        day,
        commune,
        bulletins=bulletins,
        recordings=recordings,
        spoken=spoken,
        durations=durations,
        decisions=decisions,
    )
    return next((p for p in plans if p.slot.name == slot), None)


def plan_day(
    day: dt.date,
    communes: Sequence[Commune],
    *,
    bulletins: Sequence[Bulletin],
    recordings: Mapping[tuple[int, str], Recording],
    spoken: Speakable,
    durations: Durations | None = None,
    decisions: Decisions | None = None,
) -> list[ProgramPlan]:
    return [
        plan
        for commune in communes
        for plan in plan_commune_day(
            day,
            commune,
            bulletins=bulletins,
            recordings=recordings,
            spoken=spoken,
            durations=durations,
            decisions=decisions,
        )
    ]
