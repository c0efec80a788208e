"""Consultations: what the CLI, the web and the scheduler share.

Checking an answer against its campaign, the summary per question, commune, language and
channel, phone numbers (normalised, masked), the follow-up bulletin made from the agency's
answer, and the retention purge of personal fields. Exports live in
``pipeline/feedback/export.py`` (the one owner of that format).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.config import Settings
from pipeline.errors import UsageError
from pipeline.lifecycle.actors import Actor
from pipeline.models import LANGUAGES, Answer, Consultation, Deployment, Question
from pipeline.store import Database
from pipeline.store import consultations as store
from pipeline.textrules import check_text

log = logging.getLogger(__name__)

YES, NO = "yes", "no"
YESNO_VI = {YES: "Có", NO: "Không"}
CHANNEL_VI = {"web": "Trang web", "meeting": "Họp thôn", "device": "Loa thông minh / kiosk"}
MAX_ANSWER_CHARS = 1000
MAX_NAME_CHARS = 80
_PHONE_RE = re.compile(r"^0\d{9,10}$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
#: The consent line shown with the personal fields and recorded with the answer.
CONSENT_TEXT = (
    "Tôi đồng ý để cơ quan soạn thảo và Trung tâm Văn hóa xử lý họ tên, xã và số điện thoại tôi cung cấp "
    "chỉ để tiếp nhận và phản hồi ý kiến này, theo Nghị định 13/2023/NĐ-CP về bảo vệ dữ liệu cá nhân; "
    "dữ liệu được xóa khi hết thời hạn lưu giữ hoặc khi tôi yêu cầu."
)


def clean(text: str, limit: int = MAX_ANSWER_CHARS) -> str:
    """NFC, no control characters, trimmed; cut at ``limit`` characters."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _CONTROL_RE.sub("", text).strip()[:limit]


def normalize_phone(raw: str) -> str:
    """A Vietnamese phone number as 0xxxxxxxxx; "" when empty. +84/84 prefixes become 0."""
    digits = re.sub(r"[\s.\-()]", "", raw.strip())
    if not digits:
        return ""
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    if not _PHONE_RE.match(digits):
        raise UsageError(
            f"phone: {raw!r} is not a Vietnamese phone number (10 or 11 digits starting with 0)",
            code="consultation.phone",
            value=raw,
        )
    return digits


def mask_phone(phone: str) -> str:
    """``0912345678`` → ``091****678``: enough to recognise, not to call."""
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 6) + phone[-3:]


#: Roles that may see phone numbers in full (to call a person back, or answer a data request).
PHONE_ROLES = frozenset({"admin", "approver"})


def shown_phone(phone: str, role: str | None) -> str:
    return phone if role in PHONE_ROLES else mask_phone(phone)


def is_open(c: Consultation, now: dt.datetime, timezone: str) -> bool:
    return c.spec.open_on(now.astimezone(ZoneInfo(timezone)).date())


def check_values(c: Consultation, raw: list[str]) -> tuple[str, ...]:
    """Each question's answer checked against its kind; "" for a question left empty.

    Raises ``UsageError`` with a ``consultation.values.*`` code naming the question (its number
    is ``question``); devices and pages show ``messages.vietnamese`` of it.
    """
    if len(raw) != len(c.spec.questions):
        raise UsageError(
            f"{c.spec.code}: {len(raw)} answers for {len(c.spec.questions)} questions",
            code="consultation.values.count",
            count=len(raw),
            questions=len(c.spec.questions),
            consultation=c.spec.code,
        )
    out = []
    for i, (q, value) in enumerate(zip(c.spec.questions, raw, strict=True), start=1):
        v = clean(value)
        if v and q.kind == "yesno" and v not in YESNO_VI:
            raise UsageError(
                f"question {i}: answer yes or no, not {v!r}", code="consultation.values.yesno", question=i, value=v
            )
        if v and q.kind == "choice" and v not in q.choices:
            raise UsageError(
                f"question {i}: {v!r} is not one of its choices", code="consultation.values.choice", question=i, value=v
            )
        out.append(v)
    return tuple(out)


def communes_of(c: Consultation, deployment: Deployment) -> list[str]:
    return [x.code for x in deployment.targeted(c.targets)]


# --- summary --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuestionSummary:
    number: int
    question: Question
    counts: tuple[tuple[str, int], ...]  # option label → answers; for text: "Có ý kiến"
    unanswered: int
    texts: tuple[tuple[int, str], ...]  # (answer id, text) of free-text answers and meeting gists


@dataclass(frozen=True, slots=True)
class Summary:
    answers: int  # counted answers: not hidden, not merged into another
    people: int  # people those answers speak for (a village meeting counts its attendance)
    hidden: int
    merged: int
    by_commune: tuple[tuple[str, int], ...]
    by_language: tuple[tuple[str, int], ...]
    by_channel: tuple[tuple[str, int], ...]
    by_topic: tuple[tuple[str, int], ...]
    questions: tuple[QuestionSummary, ...]


def counted(answers: list[Answer]) -> list[Answer]:
    """The answers that count: not hidden by moderation and not a merged duplicate."""
    return [a for a in answers if not a.hidden and a.merged_into is None]


def summarize(c: Consultation, answers: list[Answer], deployment: Deployment) -> Summary:
    kept = counted(answers)
    names = {x.code: x.name for x in deployment.communes}
    questions = []
    for i, q in enumerate(c.spec.questions):
        values = [a.values[i] if i < len(a.values) else "" for a in kept]
        tally = Counter(v for v in values if v)
        if q.kind == "yesno":
            counts = tuple((YESNO_VI[k], tally[k]) for k in (YES, NO))
        elif q.kind == "choice":
            counts = tuple((choice, tally[choice]) for choice in q.choices)
        else:
            counts = (("Có ý kiến", sum(tally.values())),)
        texts = [(a.id or 0, a.values[i]) for a in kept if q.kind == "text" and i < len(a.values) and a.values[i]]
        texts += [(a.id or 0, a.notes[i]) for a in kept if i < len(a.notes) and a.notes[i]]
        questions.append(QuestionSummary(i + 1, q, counts, sum(1 for v in values if not v), tuple(sorted(texts))))

    def tally_by(key: list[str]) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(Counter(key).items(), key=lambda kv: (-kv[1], kv[0])))

    return Summary(
        answers=len(kept),
        people=sum(a.people for a in kept),
        hidden=sum(1 for a in answers if a.hidden),
        merged=sum(1 for a in answers if a.merged_into is not None and not a.hidden),
        by_commune=tally_by([names.get(a.commune, "Không rõ") if a.commune else "Không rõ" for a in kept]),
        by_language=tally_by([LANGUAGES.get(a.language, a.language) for a in kept]),
        by_channel=tally_by([CHANNEL_VI.get(a.channel, a.channel) for a in kept]),
        by_topic=tally_by([a.topic for a in kept if a.topic]),
        questions=tuple(questions),
    )


# --- the follow-up bulletin -----------------------------------------------------

FOLLOWUP_OPENING = "Ý kiến của bà con đã được tiếp thu."


def followup_text(
    c: Consultation,
    answer: str,
    summary: Summary,
    *,
    valid_from: dt.date,
    languages: tuple[str, ...] = ("vi",),
    days: int = 14,
) -> str:
    """A bulletin file (front matter and body) answering the people, for intake as a draft."""
    where = f"phản hồi {c.spec.code}"
    answer = unicodedata.normalize("NFC", answer.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if not answer:
        raise UsageError(
            f"{where}: the agency's answer is empty; write what the agency took on board",
            code="consultation.answer.empty",
            field="consultation.answer",
        )
    answer = check_text(answer, field="consultation.answer", where=where)  # refused characters, the limit

    def q(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    title = clean(f"Tiếp thu ý kiến nhân dân: {c.policy or c.title}", 180)
    targets = ", ".join(q(t) for t in c.targets)
    body = (
        f"{FOLLOWUP_OPENING} {c.spec.agency} cảm ơn bà con đã góp ý về {c.policy or c.title}. "
        f"Đã có {summary.answers} ý kiến, thay mặt cho {summary.people} người, gửi về trước ngày "
        f"{c.spec.closes:%d/%m/%Y}.\n\n{answer}\n"
    )
    return (
        "+++\n"
        f"title = {q(title)}\n"
        'category = "policy"\n'
        'priority = "routine"\n'
        f"source = {q(c.spec.agency)}\n"
        f"reference = {q('Phản hồi lấy ý kiến ' + c.spec.code)}\n"
        f"valid_from = {valid_from.isoformat()}\n"
        f"valid_until = {(valid_from + dt.timedelta(days=days - 1)).isoformat()}\n"
        f"targets = [{targets}]\n"
        f"languages = [{', '.join(q(x) for x in languages)}]\n"
        f"policy = {q(c.policy or c.title)}\n"
        'stage = "promulgated"\n'
        "+++\n"
        f"{body}"
    )


# --- retention ------------------------------------------------------------------


def purge_expired(db: Database, settings: Settings, *, now: dt.datetime | None = None) -> int:
    """Erase personal fields older than ``consultation.retention_days``; what the scheduler runs.

    Returns how many answers had personal fields erased; their values and counts stay.
    """
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=settings.consultation.retention_days)
    erased = store.erase_personal_before(db, cutoff)
    remove_recordings(erased, settings.data_dir)
    if erased:
        log.info("consultation retention: personal fields of %d answers erased (before %s)", len(erased), cutoff)
    return len(erased)


def remove_recordings(erased: list[Answer], data_dir: Path) -> int:
    """Delete the voice-message files of answers whose personal fields were erased."""
    removed = 0
    for a in erased:
        if a.recording:
            path = (data_dir / a.recording).resolve()
            if data_dir.resolve() in path.parents and path.is_file():
                path.unlink()
                removed += 1
    return removed


def purge_job(config_path: str | None) -> None:
    """The retention purge as a scheduler job: open settings and store, purge, log. Never raises."""
    from pipeline.config import load_settings
    from pipeline.store import open_database

    try:
        settings = load_settings(config_path)
        db = open_database(settings.db_url)
    except Exception:
        log.exception("consultation purge: cannot load the settings or open the database (config %s)", config_path)
        return
    try:
        purge_expired(db, settings)
    except Exception:
        log.exception("consultation purge failed; it runs again at its next time")
    finally:
        db.close()


def make_followup(
    db: Database, deployment: Deployment, c: Consultation, answer: str, *, today: dt.date, actor: Actor
) -> int:
    """The agency's answer → a draft follow-up bulletin (through intake) to the campaign's targets; its id.

    The answer is kept on the campaign, in the same transaction (``lifecycle.submit_followup``).
    Raises ``UsageError``/``BulletinError`` for an empty or bad answer.
    """
    from pipeline import lifecycle
    from pipeline.intake import parse_bulletin
    from pipeline.store import bulletins as bulletin_store

    summary = summarize(c, store.list_answers(db, c.id), deployment)
    original = bulletin_store.get_bulletin(db, c.bulletin_id)
    source = followup_text(c, answer, summary, valid_from=today, languages=original.languages)
    parsed = parse_bulletin(source, where=f"phản hồi {c.spec.code}", deployment=deployment)
    change = lifecycle.submit_followup(
        db, actor, parsed.bulletin, campaign_id=c.id, answer=clean(answer, 5000), deployment=deployment
    )
    assert change.bulletin.id is not None
    return change.bulletin.id
