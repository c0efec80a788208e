"""The bulletin form: fields → the same Markdown+TOML text ``loa bulletin add`` reads.

The form's text goes through ``intake.parse_bulletin``, so the web and the command line
accept and refuse exactly the same bulletins; an error is put beside the field it names
(``err.fields["field"]``), in the Vietnamese of ``messages.VI`` for its code.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.errors import BulletinError
from pipeline.intake import parse_bulletin
from pipeline.lifecycle.reads import CONTENT_FIELDS
from pipeline.messages import vietnamese
from pipeline.models import Bulletin, Deployment

FIELDS = (*CONTENT_FIELDS, "replay_every_minutes")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class BulletinForm:
    """What the person typed, kept as typed so that the form can be shown again."""

    values: dict[str, str] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_bulletin(cls, b: Bulletin) -> BulletinForm:
        values = {
            "title": b.title,
            "category": b.category,
            "priority": b.priority,
            "source": b.source,
            "reference": b.reference,
            "valid_from": b.valid_from.isoformat(),
            "valid_until": b.valid_until.isoformat(),
            "body": b.body,
            "replay_every_minutes": str(b.replay_every_minutes) if b.replay_every_minutes is not None else "",
        }
        if not b.public:
            values["internal"] = "1"
        return cls(values=values, targets=list(b.targets), languages=list(b.languages))

    @classmethod
    def from_form(cls, form: Mapping[str, str], lists: Mapping[str, list[str]]) -> BulletinForm:
        values = {k: unicodedata.normalize("NFC", form.get(k, "")) for k in FIELDS if k not in ("targets", "languages")}
        if form.get("internal"):
            values["internal"] = "1"
        extra = [t.strip() for t in re.split(r"[,\s]+", form.get("targets_extra", "")) if t.strip()]
        targets = list(dict.fromkeys([*lists.get("targets", []), *extra]))
        return cls(values=values, targets=targets, languages=list(dict.fromkeys(lists.get("languages", []))))

    def text(self) -> str:
        """The bulletin file this form stands for."""
        v = self.values
        lines = ["+++"]
        for key in ("title", "category", "priority", "source", "reference"):
            lines.append(f"{key} = {_toml_str(v.get(key, '').strip())}")
        for key in ("valid_from", "valid_until"):
            value = v.get(key, "").strip()
            lines.append(
                f"{key} = {value}" if _DATE_RE.match(value) and _is_date(value) else f"{key} = {_toml_str(value)}"
            )
        lines.append(f"targets = {json.dumps(self.targets, ensure_ascii=False)}")
        lines.append(f"languages = {json.dumps(self.languages, ensure_ascii=False)}")
        replay = v.get("replay_every_minutes", "").strip()
        if replay:  # a number as a TOML integer; anything else quoted, so that intake names the field
            lines.append(f"replay_every_minutes = {replay if replay.isdigit() else _toml_str(replay)}")
        if v.get("internal"):
            lines.append("public = false")
        lines.append("+++")
        lines.append(v.get("body", ""))
        return "\n".join(lines) + "\n"


def _toml_str(value: str) -> str:
    # a JSON string is a valid TOML basic string (same escapes)
    return json.dumps(value, ensure_ascii=False)


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def validate(form: BulletinForm, *, where: str, deployment: Deployment) -> Bulletin | None:
    """The bulletin, or None with ``form.errors`` filled in (field → Vietnamese message)."""
    for key in ("valid_from", "valid_until"):
        value = form.values.get(key, "").strip()
        if not value:
            form.errors[key] = "Hãy chọn ngày (năm-tháng-ngày)."
        elif not (_DATE_RE.match(value) and _is_date(value)):
            form.errors[key] = f"{value!r} không phải là ngày; hãy chọn ngày dạng 2026-12-01."
    if not form.targets:
        form.errors["targets"] = "Hãy chọn ít nhất một nơi nhận (toàn tỉnh, một trung tâm hoặc một xã)."
    if not form.languages:
        form.errors["languages"] = "Hãy chọn ít nhất một ngôn ngữ."
    if form.errors:
        return None
    try:
        return parse_bulletin(form.text(), where=where, deployment=deployment).bulletin
    except BulletinError as exc:
        form.errors[field_of(exc)] = vietnamese(exc)
        return None


def field_of(err: BulletinError) -> str:
    """The form field an intake error is about (from its ``field``; the body when it names none on the form)."""
    field = str(err.fields.get("field") or "")
    return field if field in FIELDS else "body"
