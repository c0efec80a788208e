"""Plan: which bulletins a commune hears in a slot, in which order and languages.

For a date, a commune and a slot: the approved bulletins valid on the date (both ends
inclusive) whose targets include the commune ("all", its group or its code), ordered
emergency, urgent, routine, then by approval time. A bulletin's languages in the
program are the commune's languages that the bulletin lists, in the commune's order.
The slot's ``max_minutes`` is filled with estimates (Vietnamese speech from the length
of its spoken form, recordings by their measured duration); what does not fit is
deferred to the next slot of the day, where deferred bulletins go first within their
priority, and what does not fit in the last slot is deferred to the next day. Nothing is
dropped silently: every deferral is in ``ProgramPlan.deferred``. An emergency bulletin is
never deferred. A slot with no bulletins still gets a short program (greeting, closing)
so the commune's loudspeakers keep their schedule and operators see that nothing is
pending; slots that do not run on the day get no program.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

from pipeline.models import (
    PRIORITIES,
    TTS_LANGUAGES,
    Bulletin,
    Commune,
    Deferral,
    PlannedBulletin,
    ProgramPlan,
    Recording,
)

#: espeak-ng at rate 150 speaks about 16 characters of spoken-form Vietnamese a second
#: (measured on the example bulletins: 972 characters in 59.8 s, 998 in 60.8 s).
SPOKEN_CHARS_PER_SECOND = 16
#: Greeting, chimes, closing and pauses around the bulletins of one program.
PROGRAM_OVERHEAD_MS = 40_000
#: Title, source, reference, pauses and the intro clip around each bulletin and language.
ITEM_OVERHEAD_MS = 8_000

Speakable = Callable[[str], str]


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
) -> int:
    total = 0
    for lang in languages:
        if lang in TTS_LANGUAGES:
            text = spoken(f"{b.title}. {b.source}. {b.reference}. {b.body}")
            total += len(text) * 1000 // SPOKEN_CHARS_PER_SECOND + ITEM_OVERHEAD_MS
        elif b.id is not None and (rec := recordings.get((b.id, lang))) is not None:
            total += rec.duration_ms + ITEM_OVERHEAD_MS
    return total


def _order_key(b: Bulletin, deferred_ids: set[int]) -> tuple[int, int, dt.datetime, int]:
    approved = b.approved_at or dt.datetime.max.replace(tzinfo=dt.UTC)
    return (PRIORITIES.index(b.priority), 0 if b.id in deferred_ids else 1, approved, b.id or 0)


def plan_commune_day(
    day: dt.date,
    commune: Commune,
    *,
    bulletins: Sequence[Bulletin],
    recordings: Mapping[tuple[int, str], Recording],
    spoken: Speakable,
) -> list[ProgramPlan]:
    """The programs of one commune for ``day``, slot by slot in the order they air."""
    slots = sorted((s for s in commune.slots if s.runs_on(day)), key=lambda s: s.start)
    candidates = [b for b in eligible(bulletins, commune, day) if languages_for(b, commune)]
    estimates = {
        b.id: estimate_ms(b, languages_for(b, commune), recordings=recordings, spoken=spoken) for b in candidates
    }
    deferred_ids: set[int] = set()
    plans: list[ProgramPlan] = []
    for index, slot in enumerate(slots):
        budget = slot.max_minutes * 60_000 - PROGRAM_OVERHEAD_MS
        next_slot = slots[index + 1].name if index + 1 < len(slots) else f"{day + dt.timedelta(days=1)} (next day)"
        items: list[PlannedBulletin] = []
        deferred: list[Deferral] = []
        used = 0
        for b in sorted(candidates, key=lambda b: _order_key(b, deferred_ids)):
            need = estimates[b.id]
            if used + need <= budget or b.priority == "emergency":
                items.append(PlannedBulletin(b, languages_for(b, commune), need))
                used += need
                deferred_ids.discard(b.id or 0)
            else:
                reason = (
                    f"needs about {need // 1000} s, {max(budget - used, 0) // 1000} s left of {slot.max_minutes} min"
                )
                deferred.append(Deferral(b, reason, next_slot))
                deferred_ids.add(b.id or 0)
        plans.append(ProgramPlan(day, commune, slot, tuple(items), tuple(deferred)))
    return plans


def plan_day(
    day: dt.date,
    communes: Sequence[Commune],
    *,
    bulletins: Sequence[Bulletin],
    recordings: Mapping[tuple[int, str], Recording],
    spoken: Speakable,
) -> list[ProgramPlan]:
    return [
        plan
        for commune in communes
        for plan in plan_commune_day(day, commune, bulletins=bulletins, recordings=recordings, spoken=spoken)
    ]
