"""Which reminders hold now: the readings a bulletin still needs, whom to tell, by when.

A bulletin **needs** language X in the communes it targets whose languages include X (and
X is one of the bulletin's languages); a **reading** is missing while no current recording
of X exists. Its **deadline** is the nightly build before its first air time still ahead:
``[nightly] time`` on the day before the first day a slot of such a commune runs.

Two events per (bulletin, language), each with a stable key:

- ``asked:<id>:<state>:<lang>`` — the bulletin was submitted (draft) or approved and X is
  missing: the readers of X whose scope holds a commune that needs it are told.
- ``due:<id>:<lang>:<deadline>`` — X is still missing ``[reminders] before_deadline_hours``
  before the deadline: the readers and the bulletin's approver are told again.

Vietnamese (spoken by text-to-speech when nobody reads it) is asked for only when a reader of
it exists in scope; emergencies are not waited for (they air at once).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pipeline.lifecycle.actors import reader_communes
from pipeline.models import LANGUAGES, TTS_LANGUAGES, Bulletin, Commune, Deployment
from pipeline.store.users import User

ASKED, DUE = "asked", "due"
STATE_VI = {"draft": "vừa được gửi duyệt", "approved": "đã được duyệt"}


@dataclass(frozen=True, slots=True)
class Reminder:
    event: str  # the stable key: asked:12:draft:hmn, due:12:hmn:2026-12-08T01:00
    kind: str  # asked | due
    bulletin_id: int
    title: str
    language: str
    communes: tuple[str, ...]  # names of the communes that need the reading
    first_air: dt.datetime
    deadline: dt.datetime
    recipients: tuple[str, ...]  # user names

    @property
    def webhook_kind(self) -> str:
        return "reading.requested" if self.kind == ASKED else "reading.due"


def _clock(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def first_airing(
    b: Bulletin, communes: tuple[Commune, ...], *, nightly: str, now: dt.datetime, tz: ZoneInfo
) -> tuple[dt.datetime, dt.datetime] | None:
    """(first air time, its deadline) still ahead of ``now`` for ``communes``; None when none is."""
    build = _clock(nightly)
    day = max(b.valid_from, now.astimezone(tz).date())
    while day <= b.valid_until:
        deadline = dt.datetime.combine(day - dt.timedelta(days=1), build, tzinfo=tz)
        starts = [dt.datetime.combine(day, s.start, tzinfo=tz) for c in communes for s in c.slots if s.runs_on(day)]
        if deadline > now and starts:
            return min(starts), deadline
        day += dt.timedelta(days=1)
    return None


def needing(b: Bulletin, deployment: Deployment, language: str) -> tuple[Commune, ...]:
    """The communes ``b`` reaches whose people need ``language``."""
    if language not in b.languages:
        return ()
    return tuple(c for c in deployment.targeted(b.targets) if language in c.languages)


def readers_for(users: list[User], deployment: Deployment, language: str, communes: tuple[Commune, ...]) -> list[str]:
    codes = {c.code for c in communes}
    return [
        u.name
        for u in users
        if u.role == "reader" and not u.disabled and language in u.languages and reader_communes(u, deployment) & codes
    ]


def approvers_for(users: list[User], communes: tuple[Commune, ...], approved_by: str | None) -> list[str]:
    """Who approved the bulletin; before approval, the approvers whose center serves one of ``communes``."""
    active = {u.name: u for u in users if not u.disabled}
    if approved_by in active and active[approved_by].role in ("approver", "admin"):
        return [approved_by]
    groups = {c.group for c in communes}
    return [u.name for u in active.values() if u.role == "approver" and (u.group is None or u.group in groups)]


def due_reminders(
    bulletins: list[Bulletin],
    have: set[tuple[int, str]],
    users: list[User],
    deployment: Deployment,
    *,
    approved_by: dict[int, str | None],
    now: dt.datetime,
    tz: ZoneInfo,
    nightly: str,
    before: dt.timedelta,
) -> list[Reminder]:
    """Every reminder that holds at ``now`` (sent or not: the caller skips what was sent)."""
    out = []
    for b in bulletins:
        if b.id is None or b.status not in STATE_VI or b.priority == "emergency":
            continue
        for lang in b.languages:
            communes = needing(b, deployment, lang)
            if not communes or (b.id, lang) in have:
                continue
            airing = first_airing(b, communes, nightly=nightly, now=now, tz=tz)
            if airing is None:
                continue
            first_air, deadline = airing
            readers = readers_for(users, deployment, lang, communes)
            if not readers and lang in TTS_LANGUAGES:
                continue  # spoken by text-to-speech when nobody reads it: nothing is missing on air
            names = tuple(c.name for c in communes)
            common = (b.id, b.title, lang, names, first_air, deadline)
            if readers:
                out.append(Reminder(f"{ASKED}:{b.id}:{b.status}:{lang}", ASKED, *common, tuple(readers)))
            if now >= deadline - before:
                again = readers + [a for a in approvers_for(users, communes, approved_by.get(b.id)) if a not in readers]
                stamp = deadline.astimezone(tz).strftime("%Y-%m-%dT%H:%M")
                out.append(Reminder(f"{DUE}:{b.id}:{lang}:{stamp}", DUE, *common, tuple(again)))
    return out


def _local(at: dt.datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%H:%M ngày %d/%m/%Y")


def message(r: Reminder, *, status: str, tz: ZoneInfo, web_url: str) -> tuple[str, str]:
    """(subject, body) in Vietnamese."""
    lang = LANGUAGES.get(r.language, r.language)
    where = ", ".join(r.communes)
    link = f"{web_url.rstrip('/')}/readings" if web_url else "trang Bản đọc (/readings)"
    if r.kind == ASKED:
        subject = f"[Loa] Cần bản đọc {lang}: «{r.title}»"
        opening = f"Bản tin số {r.bulletin_id} «{r.title}» {STATE_VI.get(status, '')} và cần bản đọc {lang}."
    else:
        subject = f"[Loa] NHẮC LẠI: vẫn thiếu bản đọc {lang}: «{r.title}»"
        opening = f"Bản tin số {r.bulletin_id} «{r.title}» vẫn chưa có bản đọc {lang}."
    body = (
        f"{opening}\n"
        f"Phát tại: {where}.\n"
        f"Buổi phát đầu tiên: {_local(r.first_air, tz)}.\n"
        f"Hạn ghi âm: trước {_local(r.deadline, tz)} (lần dựng chương trình ban đêm).\n"
        f"Nếu không có bản đọc, {lang} sẽ bị bỏ qua trong bản tin này.\n"
        f"Ghi âm hoặc tải lên tại: {link}\n"
    )
    return subject, body
