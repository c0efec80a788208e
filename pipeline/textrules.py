"""What text Loa accepts, from every door: the characters it refuses, NFC, and length limits.

Every text field of a bulletin passes ``check_text`` — the file (``loa bulletin add``), the web
form, the agency API (Markdown or JSON), CAP import, the consultation follow-up — because each
goes through ``intake.parse_bulletin`` or, for CAP, ``cap.to_bulletin``; and the domain
(``lifecycle.submit``, ``lifecycle.revise``) checks every field again with ``check_bulletin``, so
a door that builds a ``Bulletin`` itself cannot store what the rules refuse. A refusal is a
``BulletinError`` (``CapError`` for CAP) whose code says why and whose fields name the field,
the line (when the door has lines), the character and the limit:

    bulletin.field.control_char  C0 controls other than tab and newline, DEL, C1 controls
                                 (U+0080–U+009F), line and paragraph separators (U+2028, U+2029)
    bulletin.field.bidi          bidi embedding, override and isolate characters (U+202A–U+202E,
                                 U+2066–U+2069) and the marks U+200E, U+200F, U+061C
    bulletin.field.invisible     every other invisible format character (Unicode category Cf:
                                 zero-width space and joiners, word joiner, soft hyphen, BOM,
                                 interlinear annotations, tag characters…), surrogates and
                                 noncharacters (U+FDD0–U+FDEF, U+xFFFE, U+xFFFF)
    bulletin.field.newline       a line break in a one-line field (a title, a source…)
    bulletin.field.too_long      more characters than the field's limit (``LIMITS``)
    bulletin.field.not_nfc       (``check_bulletin`` only) text that did not come through intake

They are refused, not removed: what a person sent is what airs, or they are told why not. Why
these: control characters make the podcast feeds and the manifest invalid XML or JSON for
strict readers and reach terminals as escape sequences; bidi controls make a text read
differently from what it says; invisible characters make two titles that look the same differ
(duplicate checks, searches) and hide text from the people who approve it.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

from pipeline.errors import BulletinError

if TYPE_CHECKING:
    from pipeline.models import Bulletin

#: Field → the most characters it may have (after NFC). One-line fields are in ``ONE_LINE``.
LIMITS: dict[str, int] = {
    "title": 200,
    "source": 200,
    "reference": 200,
    "body": 20_000,
    "policy": 200,
    "consultation.agency": 200,
    "consultation.question.text": 500,
    "consultation.question.choice": 100,
    "consultation.answer": 5_000,  # the drafting agency's answer, the body of the follow-up
}
ONE_LINE = frozenset(LIMITS) - {"body", "consultation.answer"}

_BIDI = frozenset("\u200e\u200f\u061c") | frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def refused_kind(ch: str, *, multiline: bool = True) -> str | None:
    """Why ``ch`` is refused ("control_char", "bidi", "invisible", "newline"), or None if it is accepted."""
    if ch == "\t":
        return None
    if ch == "\n":
        return None if multiline else "newline"
    cp = ord(ch)
    if cp < 0x20 or 0x7F <= cp <= 0x9F or ch in "\u2028\u2029":
        return "control_char"
    if ch in _BIDI:
        return "bidi"
    category = unicodedata.category(ch)
    if category in ("Cf", "Cs") or 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE:
        return "invisible"
    return None


def first_refused(text: str, *, multiline: bool = True) -> tuple[int, str, str] | None:
    """(index, character, kind) of the first refused character of ``text``, or None."""
    for i, ch in enumerate(text):
        kind = refused_kind(ch, multiline=multiline)
        if kind is not None:
            return i, ch, kind
    return None


def char_name(ch: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE``: how an error names a character (never the character itself)."""
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" {name}" if name else "")


_WHY = {
    "control_char": "is a control character",
    "bidi": "is a bidirectional-text control, which makes text read other than it shows",
    "invisible": "is an invisible character",
    "newline": "is a line break; this field is one line",
}
#: The kinds of refused character: the codes ``bulletin.field.<kind>``.
KINDS = tuple(_WHY)


def shown(value: object, *, limit: int = 60) -> str:
    """``value`` as an error may quote it: refused characters as ``U+XXXX``, at most ``limit`` characters."""
    text = "".join(f"U+{ord(c):04X}" if refused_kind(c, multiline=False) else c for c in str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_chars(
    text: str,
    *,
    field: str,
    where: str,
    line: int | None = None,
    multiline: bool = True,
    error: type[BulletinError] = BulletinError,
    unit: str = "character",
) -> None:
    """Raise ``error`` naming ``field`` and the line of the first refused character of ``text``.

    ``line`` is the line ``text`` starts on (None when the door has no lines); ``unit`` says
    what the position counts: "character" of the value, or "column" of its line when ``text``
    is lines of a file as written.
    """
    bad = first_refused(text, multiline=multiline)
    if bad is None:
        return
    index, ch, kind = bad
    at_line = line + text.count("\n", 0, index) if line else None
    at = f"line {at_line}: " if at_line else ""
    position = index - (text.rfind("\n", 0, index) + 1 if unit == "column" else 0) + 1
    raise error(
        f"{where}: {at}{field}: {unit} {position} ({char_name(ch)}) {_WHY[kind]}; delete it or type the text again",
        code=f"bulletin.field.{kind}",
        file=where,
        field=field,
        line=at_line,
        char=f"U+{ord(ch):04X}",
        position=position,
    )


def check_text(
    value: str,
    *,
    field: str,
    where: str,
    line: int | None = None,
    limit_key: str | None = None,
    error: type[BulletinError] = BulletinError,
) -> str:
    """``value`` in NFC, or ``error`` naming ``field`` (and the line) if it breaks a rule.

    ``limit_key`` is the key in ``LIMITS`` (default ``field``); it also says whether the field
    is one line. ``where`` (a file, ``api:agency``, a CAP identifier) starts the English message.
    """
    key = limit_key or field
    limit = LIMITS[key]
    text = unicodedata.normalize("NFC", value)
    check_chars(text, field=field, where=where, line=line, multiline=key not in ONE_LINE, error=error)
    if len(text) > limit:
        at = f"line {line}: " if line else ""
        raise error(
            f"{where}: {at}{field}: {len(text)} characters, more than {limit}; shorten it"
            + (" or split the bulletin" if key == "body" else ""),
            code="bulletin.field.too_long",
            file=where,
            field=field,
            line=line,
            limit=limit,
            length=len(text),
        )
    return text


def check_bulletin(b: Bulletin) -> None:
    """Every text field of ``b`` under the rules, or the first field's error (no lines: the door had them).

    The domain (``pipeline.lifecycle``) calls it on what any door submits, so a door that builds a
    ``Bulletin`` without ``intake`` still cannot store text the rules refuse. Text must already be NFC.
    """
    where = b.source_file or (f"bulletin {b.id}" if b.id is not None else "bulletin")
    texts: list[tuple[str, str, str]] = [
        ("title", b.title, "title"),
        ("source", b.source, "source"),
        ("reference", b.reference, "reference"),
        ("body", b.body, "body"),
        ("policy", b.policy, "policy"),
    ]
    if b.consultation is not None:
        texts.append(("consultation.agency", b.consultation.agency, "consultation.agency"))
        for i, q in enumerate(b.consultation.questions, start=1):
            name = f"consultation.question[{i}]"
            texts.append((f"{name}.text", q.text, "consultation.question.text"))
            texts.extend((f"{name}.choices", c, "consultation.question.choice") for c in q.choices)
    for field, value, key in texts:
        if check_text(value, field=field, where=where, limit_key=key) != value:
            raise BulletinError(
                f"{where}: {field}: the text is not in Unicode NFC; send it through intake",
                code="bulletin.field.not_nfc",
                file=where,
                field=field,
                line=None,
            )
