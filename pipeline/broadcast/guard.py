"""The broadcast policy guard: pure checks of what would air against the deployment's rules.

Rules come from ``[policy]`` in schedules/ (the deployment) and ``[commune.policy]`` (one
commune; its keys override the deployment's), see ``Policy``:

- ``quiet_hours`` (giờ yên tĩnh), e.g. ["22:00", "05:00"]: only emergencies (khẩn cấp) air
  then. A regular program that would air, even in part, within the window is refused unless
  every item in it is an emergency; emergency dispatches and replays are never refused for it.
- ``max_program_minutes``: the longest a slot program may run (estimated before the build,
  measured after it). Emergency programs are not limited.
- ``max_replays_per_day``: the most replays of one emergency bulletin in a local day
  (``pipeline.broadcast.replay.replay_times(max_per_day=…)`` keeps a schedule within it).
- ``required_languages``: the languages a commune's programs must carry (Decree 49/2024: Vietnamese
  and the local ethnic languages). A program that has bulletins but lacks one is *reported*
  (``refuse`` False): the dashboard shows it per commune; the build goes on.

Every function here is pure: it takes a description of what would air and returns the
violations, each naming its rule. The orchestrator refuses a build or dispatch with a
refusing violation and shows the others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pipeline.models import LANGUAGES, Commune, Deployment, Policy, Program, ProgramPlan, tier_of
from pipeline.plan import PROGRAM_OVERHEAD_MS

RULES = ("quiet_hours", "max_program_minutes", "max_replays_per_day", "required_languages")
#: Vietnamese names of the rules, for the dashboard.
RULE_VI = {
    "quiet_hours": "Giờ yên tĩnh",
    "max_program_minutes": "Thời lượng tối đa của chương trình",
    "max_replays_per_day": "Số lần phát lại tối đa trong ngày",
    "required_languages": "Ngôn ngữ bắt buộc",
}


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str  # one of RULES
    commune: str  # commune code
    what: str  # program id or "bulletin N"
    message: str  # English, for the CLI and logs
    message_vi: str  # Vietnamese, for the web
    refuse: bool = True  # False: reported, not refused (missing languages)


@dataclass(frozen=True, slots=True)
class Airing:
    """What would air: a slot program, an emergency dispatch or a replay."""

    commune: str
    what: str
    start: dt.datetime  # tz-aware
    duration_ms: int
    kind: str = "program"  # program | emergency
    tiers: tuple[str, ...] = ()  # tiers of the bulletins in it
    languages: tuple[str, ...] = ()  # languages its bulletins are heard in

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(milliseconds=self.duration_ms)

    @property
    def all_emergency(self) -> bool:
        return self.kind == "emergency" or (bool(self.tiers) and all(t == "emergency" for t in self.tiers))


def policy_for(commune: Commune, deployment: Deployment) -> Policy:
    """The commune's rules: its own ``[commune.policy]`` keys over the deployment's ``[policy]``."""
    base = deployment.policy or Policy()
    own = commune.policy
    if own is None:
        return base
    return Policy(
        quiet_hours=own.quiet_hours if own.quiet_hours is not None else base.quiet_hours,
        max_program_minutes=own.max_program_minutes
        if own.max_program_minutes is not None
        else base.max_program_minutes,
        max_replays_per_day=own.max_replays_per_day
        if own.max_replays_per_day is not None
        else base.max_replays_per_day,
        required_languages=own.required_languages or base.required_languages,
    )


def airing_of_plan(plan: ProgramPlan, *, tz: ZoneInfo) -> Airing:
    """A planned slot program: its start, estimated length (greeting and closing counted), tiers, languages."""
    start = dt.datetime.combine(plan.date, plan.slot.start, tzinfo=tz)
    languages = tuple(dict.fromkeys(lang for i in plan.items for lang in i.languages))
    return Airing(
        commune=plan.commune.code,
        what=f"{plan.commune.code}/{plan.date.isoformat()}/{plan.slot.name}",
        start=start,
        duration_ms=plan.estimated_ms + PROGRAM_OVERHEAD_MS,
        kind=plan.kind,
        tiers=tuple(tier_of(i.bulletin.priority) or "normal" for i in plan.items),
        languages=languages,
    )


def airing_of_program(program: Program) -> Airing:
    """A built program, measured. Its tiers are not known item by item: only an emergency
    program counts as all-emergency; its languages are those of its bulletins' segments."""
    languages = tuple(dict.fromkeys(s.language for s in program.items if s.bulletin_id is not None))
    return Airing(
        commune=program.commune,
        what=program.id,
        start=program.start,
        duration_ms=program.duration_ms,
        kind=program.kind,
        tiers=("emergency",) if program.kind == "emergency" else (),
        languages=languages,
    )


def _minutes(t: dt.time) -> int:
    return t.hour * 60 + t.minute


def overlaps_quiet_hours(start: dt.datetime, end: dt.datetime, quiet: tuple[dt.time, dt.time], tz: ZoneInfo) -> bool:
    """Whether [start, end) meets the local window ``quiet`` (which may cross midnight) on any day."""
    q_start, q_end = _minutes(quiet[0]), _minutes(quiet[1])
    if q_start == q_end:
        return False
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    day = local_start.date() - dt.timedelta(days=1)
    while day <= local_end.date():
        win_start = dt.datetime.combine(day, quiet[0], tzinfo=tz)
        win_end = dt.datetime.combine(day if q_start < q_end else day + dt.timedelta(days=1), quiet[1], tzinfo=tz)
        if local_start < win_end and win_start < max(local_end, local_start + dt.timedelta(microseconds=1)):
            return True
        day += dt.timedelta(days=1)
    return False


def check_airing(airing: Airing, policy: Policy, *, tz: ZoneInfo) -> list[Violation]:
    """Quiet hours, programme length and required languages for one airing."""
    out: list[Violation] = []
    window = policy.quiet_hours
    if window is not None and not airing.all_emergency and overlaps_quiet_hours(airing.start, airing.end, window, tz):
        span = f"{window[0]:%H:%M}–{window[1]:%H:%M}"
        at = f"{airing.start.astimezone(tz):%H:%M}–{airing.end.astimezone(tz):%H:%M}"
        out.append(
            Violation(
                "quiet_hours",
                airing.commune,
                airing.what,
                f"{airing.what}: airs {at}, within the quiet hours {span} when only emergencies air",
                f"{airing.what}: phát lúc {at}, trong giờ yên tĩnh {span} (chỉ phát tin khẩn cấp)",
            )
        )
    limit = policy.max_program_minutes
    if limit is not None and airing.kind != "emergency" and airing.duration_ms > limit * 60_000:
        length = airing.duration_ms / 60_000
        out.append(
            Violation(
                "max_program_minutes",
                airing.commune,
                airing.what,
                f"{airing.what}: {length:.1f} min is longer than the {limit} min a program may run",
                f"{airing.what}: dài {length:.1f} phút, quá {limit} phút cho phép",
            )
        )
    if policy.required_languages and (airing.tiers or airing.languages) and airing.kind != "emergency":
        missing = [lang for lang in policy.required_languages if lang not in airing.languages]
        if missing:
            names = ", ".join(LANGUAGES[lang] for lang in missing)
            out.append(
                Violation(
                    "required_languages",
                    airing.commune,
                    airing.what,
                    f"{airing.what}: nothing in {', '.join(missing)}, which the commune must broadcast in",
                    f"{airing.what}: thiếu {names} (ngôn ngữ xã phải phát)",
                    refuse=False,
                )
            )
    return out


def check_plans(plans: Iterable[ProgramPlan], deployment: Deployment, *, tz: ZoneInfo) -> list[Violation]:
    """Every planned program of a build against its commune's rules."""
    return [v for p in plans for v in check_airing(airing_of_plan(p, tz=tz), policy_for(p.commune, deployment), tz=tz)]


def check_replays(
    times: Sequence[dt.datetime], policy: Policy, *, commune: str, bulletin_id: int, tz: ZoneInfo
) -> list[Violation]:
    """At most ``max_replays_per_day`` replays of one emergency bulletin in a local day."""
    limit = policy.max_replays_per_day
    if limit is None:
        return []
    per_day: dict[dt.date, int] = {}
    for t in times:
        day = t.astimezone(tz).date()
        per_day[day] = per_day.get(day, 0) + 1
    return [
        Violation(
            "max_replays_per_day",
            commune,
            f"bulletin {bulletin_id}",
            f"bulletin {bulletin_id}: {n} replays on {day} in {commune}, more than the {limit} allowed",
            f"bản tin #{bulletin_id}: phát lại {n} lần ngày {day:%d/%m/%Y} tại xã {commune}, quá {limit} lần",
        )
        for day, n in sorted(per_day.items())
        if n > limit
    ]


def refused(violations: Iterable[Violation]) -> list[Violation]:
    """The violations that refuse a build or dispatch (all but missing languages)."""
    return [v for v in violations if v.refuse]
