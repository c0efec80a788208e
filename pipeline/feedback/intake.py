"""Intake of a bulletin's policy fields and its ``[consultation]`` table.

Called by ``pipeline.intake.parse_bulletin``; errors are ``BulletinError`` naming the file,
the field (``consultation.question[2].kind``) and the line where the TOML has it.

```
policy = "Hỗ trợ giống cây trồng 2027"   # groups the policy's bulletins
stage = "draft"                           # draft | promulgated | guidance
[consultation]
code = "GY27"
opens = 2026-12-02
closes = 2026-12-20
agency = "Sở Nông nghiệp và Môi trường tỉnh Lào Cai"
[[consultation.question]]
text = "Bà con có đồng ý với mức hỗ trợ trong dự thảo không?"
kind = "yesno"            # yesno | choice | text
```
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

from pipeline.errors import BulletinError
from pipeline.models import POLICY_STAGES, QUESTION_KINDS, ConsultationSpec, Question
from pipeline.textrules import LIMITS, check_text, shown

CODE_RE = re.compile(r"^[A-Z]{1,4}[0-9]{1,4}$")
MAX_QUESTIONS = 5
MAX_CHOICES = 8
MAX_TEXT = LIMITS["consultation.question.text"]
_FIELDS = ("code", "opens", "closes", "agency", "question")
_QUESTION_FIELDS = ("text", "kind", "choices")
_HEADER_RE = re.compile(r"^\s*\[")


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


class _Fail:
    """Builds the ``BulletinError`` for one field: English message, code, file, field and line."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __call__(self, field: str, message: str, line: int | None, *, code: str, **fields: object) -> BulletinError:
        at = f"line {line}: " if line else ""
        return BulletinError(
            f"{self.where}: {at}{field}: {message}", code=code, file=self.where, field=field, line=line, **fields
        )

    def text(self, value: str, field: str, line: int | None, limit_key: str) -> str:
        """``value`` under the text rules (characters, NFC, length), stripped."""
        return check_text(value.strip(), field=field, where=self.where, line=line, limit_key=limit_key)


def _line(front: str, key: str, *, table: str | None = None, index: int = 0) -> int | None:
    """The file line of ``key = …``, inside the ``index``-th ``[table]``/``[[table]]`` when given.

    With an empty ``key``, the line of the table's header. The front matter starts on line 2.
    """
    lines = front.split("\n")
    start = 0
    if table is not None:
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(table)}\s*\]\]?\s*(#.*)?$")
        hits = [i for i, line in enumerate(lines) if header.match(line)]
        if len(hits) <= index:
            return None
        if not key:
            return hits[index] + 2
        start = hits[index] + 1
    for i in range(start, len(lines)):
        if table is not None and _HEADER_RE.match(lines[i]):
            return None
        if re.match(rf"\s*{re.escape(key)}\s*=", lines[i]):
            return i + 2
    return None


def parse_policy(meta: dict[str, Any], front: str, *, where: str) -> tuple[str, str, ConsultationSpec | None]:
    """(policy, stage, consultation) from the front matter; ("", "", None) when absent."""

    fail = _Fail(where)
    policy = meta.get("policy", "")
    if not isinstance(policy, str) or ("policy" in meta and not policy.strip()):
        raise fail(
            "policy",
            "must be a non-empty text in quotes, the policy's name",
            _line(front, "policy"),
            code="bulletin.field.empty",
        )
    policy = fail.text(policy, "policy", _line(front, "policy"), "policy")
    stage = meta.get("stage", "")
    if "stage" in meta and stage not in POLICY_STAGES:
        raise fail(
            "stage",
            f"unknown stage {shown(stage)!r}; use one of {', '.join(POLICY_STAGES)}",
            _line(front, "stage"),
            code="policy.stage.unknown",
            value=shown(stage),
            allowed=", ".join(POLICY_STAGES),
        )
    raw = meta.get("consultation")
    if raw is None:
        if stage and not policy:
            raise fail(
                "stage",
                'a stage belongs to a policy; add `policy = "…"`',
                _line(front, "stage"),
                code="policy.stage.no_policy",
            )
        if policy and not stage:
            raise fail(
                "stage",
                f"missing; add `stage = …` ({', '.join(POLICY_STAGES)})",
                _line(front, "policy"),
                code="bulletin.field.missing",
            )
        return policy, stage, None
    if not isinstance(raw, dict):
        raise fail(
            "consultation",
            "must be a table: a [consultation] line, then its fields",
            _line(front, "consultation"),
            code="consultation.not_table",
        )
    if stage and stage != "draft":
        raise fail(
            "stage",
            f'a consultation is held on a draft; use stage = "draft", not {shown(stage)!r}',
            _line(front, "stage"),
            code="consultation.not_draft",
            value=shown(stage),
        )
    spec = _parse_spec(raw, front, fail)
    return policy or _nfc(str(meta.get("title", ""))), "draft", spec


def _parse_spec(raw: dict[str, Any], front: str, fail: _Fail) -> ConsultationSpec:
    def at(key: str) -> int | None:
        return _line(front, key, table="consultation")

    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise fail(
            f"consultation.{shown(unknown[0])}",
            f"unknown field; the fields are {', '.join(_FIELDS)}",
            at(unknown[0]),
            code="bulletin.field.unknown",
        )
    for key in ("code", "opens", "closes", "agency"):
        if key not in raw:
            raise fail(
                f"consultation.{key}",
                f"missing; add `{key} = …` under [consultation]",
                at(""),
                code="bulletin.field.missing",
            )
    code = raw["code"]
    if not isinstance(code, str) or not CODE_RE.match(code):
        raise fail(
            "consultation.code",
            'must be 1–4 capital letters then 1–4 digits in quotes, short enough to say on the phone, e.g. "GY27"',
            at("code"),
            code="consultation.code.format",
            value=shown(code),
        )
    for key in ("opens", "closes"):
        if not isinstance(raw[key], dt.date) or isinstance(raw[key], dt.datetime):
            raise fail(
                f"consultation.{key}",
                "must be a date without quotes, e.g. 2026-12-20",
                at(key),
                code="bulletin.field.not_date",
            )
    if raw["closes"] < raw["opens"]:
        raise fail(
            "consultation.closes",
            f"{raw['closes']} is before opens {raw['opens']}",
            at("closes"),
            code="consultation.dates.order",
            value=str(raw["closes"]),
            opens=str(raw["opens"]),
        )
    agency = raw["agency"]
    if not isinstance(agency, str) or not agency.strip():
        raise fail(
            "consultation.agency",
            "must be a non-empty text in quotes: the drafting agency",
            at("agency"),
            code="bulletin.field.empty",
        )
    agency = fail.text(agency, "consultation.agency", at("agency"), "consultation.agency")
    questions = raw.get("question")
    if not isinstance(questions, list) or not questions:
        raise fail(
            "consultation.question",
            "at least one question is needed: add [[consultation.question]] with text and kind",
            at(""),
            code="consultation.question.none",
        )
    if len(questions) > MAX_QUESTIONS:
        where_line = _line(front, "", table="consultation.question", index=MAX_QUESTIONS)
        raise fail(
            "consultation.question",
            f"{len(questions)} questions; at most {MAX_QUESTIONS}",
            where_line,
            code="consultation.question.too_many",
            limit=MAX_QUESTIONS,
            count=len(questions),
        )
    parsed = [_parse_question(i, q, front, fail) for i, q in enumerate(questions)]
    return ConsultationSpec(code=code, opens=raw["opens"], closes=raw["closes"], agency=agency, questions=tuple(parsed))


def _parse_question(i: int, q: Any, front: str, fail: _Fail) -> Question:
    name = f"consultation.question[{i + 1}]"

    def at(key: str) -> int | None:
        return _line(front, key, table="consultation.question", index=i)

    if not isinstance(q, dict):
        raise fail(name, "must be a [[consultation.question]] table", None, code="consultation.question.not_table")
    unknown = sorted(set(q) - set(_QUESTION_FIELDS))
    if unknown:
        raise fail(
            f"{name}.{shown(unknown[0])}",
            f"unknown field; the fields are {', '.join(_QUESTION_FIELDS)}",
            at(unknown[0]),
            code="bulletin.field.unknown",
        )
    text = q.get("text")
    if not isinstance(text, str) or not text.strip():
        raise fail(
            f"{name}.text",
            "missing or empty; write the question in Vietnamese",
            at("text") or at(""),
            code="bulletin.field.empty",
        )
    text = fail.text(text, f"{name}.text", at("text"), "consultation.question.text")
    kind = q.get("kind")
    if kind not in QUESTION_KINDS:
        raise fail(
            f"{name}.kind",
            f"{shown(kind)!r} is not one of {', '.join(QUESTION_KINDS)}",
            at("kind") or at(""),
            code="consultation.question.kind",
            value=shown(kind),
            allowed=", ".join(QUESTION_KINDS),
        )
    choices = q.get("choices", [])
    if kind == "choice":
        ok = isinstance(choices, list) and all(isinstance(c, str) and c.strip() for c in choices)
        if not ok or not 2 <= len(choices) <= MAX_CHOICES:
            raise fail(
                f"{name}.choices",
                f'a choice question needs 2–{MAX_CHOICES} choices, e.g. choices = ["Có", "Không"]',
                at("choices") or at("kind"),
                code="consultation.choices.count",
                limit=MAX_CHOICES,
            )
        choices = [fail.text(c, f"{name}.choices", at("choices"), "consultation.question.choice") for c in choices]
        if len(set(choices)) != len(choices):
            raise fail(f"{name}.choices", "a choice is listed twice", at("choices"), code="consultation.choices.twice")
    elif "choices" in q:
        raise fail(
            f"{name}.choices",
            f"only a choice question has choices (this one is {kind})",
            at("choices"),
            code="consultation.choices.not_choice",
        )
    return Question(text=text, kind=str(kind), choices=tuple(choices))
