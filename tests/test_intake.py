"""Bulletin intake: every validation rule with a bad file, and the all-or-nothing store."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from pipeline.errors import BulletinError
from pipeline.intake import parse_bulletin, read_bulletin_files
from pipeline.models import Deployment
from tests.conftest import EXAMPLES, Project

GOOD = """+++
title = "Gia hạn thẻ BHYT"
category = "notice"
priority = "urgent"
source = "BHXH tỉnh Lào Cai"
reference = "Công văn 1250/BHXH-TT"
valid_from = 2026-12-01
valid_until = 2026-12-25
targets = ["all"]
languages = ["vi", "hmn"]
+++
Bà con gia hạn thẻ trước ngày 25/12/2026.
"""


def parse(text: str, deployment: Deployment) -> object:
    return parse_bulletin(text, where="b.md", deployment=deployment)


def test_good_bulletin(project: Project) -> None:
    parsed = parse_bulletin(GOOD, where="b.md", deployment=project.deployment)
    b = parsed.bulletin
    assert b.title == "Gia hạn thẻ BHYT"
    assert b.targets == ("all",)
    assert b.languages == ("vi", "hmn")
    assert b.body == "Bà con gia hạn thẻ trước ngày 25/12/2026."
    assert parsed.warnings == ()


def test_every_example_is_valid(project: Project) -> None:
    parsed = read_bulletin_files(sorted(EXAMPLES.glob("*.md")), deployment=project.deployment)
    assert len(parsed) >= 5
    assert {p.bulletin.priority for p in parsed} == {"normal", "priority", "emergency"}


BAD = [
    # (what, replace old, with new, message part)
    ("missing title", 'title = "Gia hạn thẻ BHYT"\n', "", "title: missing"),
    ("empty title", 'title = "Gia hạn thẻ BHYT"', 'title = "  "', "line 2: title: must be a non-empty text"),
    ("empty body", "Bà con gia hạn thẻ trước ngày 25/12/2026.\n", "\n  \n", "the body is empty"),
    ("malformed toml", 'category = "notice"', 'category = "notice', "line 3:"),
    (
        "unknown category",
        'category = "notice"',
        'category = "news"',
        "line 3: category: unknown category 'news'",
    ),
    (
        "unknown priority",
        'priority = "urgent"',
        'priority = "high"',
        "line 4: priority: unknown priority 'high'",
    ),
    ("unknown language", '["vi", "hmn"]', '["vi", "en"]', "languages: unknown language 'en'"),
    (
        "until before from",
        "valid_until = 2026-12-25",
        "valid_until = 2026-11-25",
        "valid_until: 2026-11-25 is before",
    ),
    ("date as text", "valid_from = 2026-12-01", 'valid_from = "1/12/2026"', "valid_from: must be a date"),
    ("unknown target", 'targets = ["all"]', 'targets = ["ha-noi"]', "targets: 'ha-noi' is not \"all\""),
    ("empty targets", 'targets = ["all"]', "targets = []", "targets: must be a list"),
    ("unknown field", 'source = "BHXH', 'sources = "x"\nsource = "BHXH', "sources: unknown field"),
    ("no front matter", "+++\ntitle", "title", "line 1: a bulletin starts with a +++ line"),
    ("unclosed front matter", "]\n+++\n", "]\n", "never closed"),
]


@pytest.mark.parametrize(("what", "old", "new", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_bulletins_name_file_field_and_line(project: Project, what: str, old: str, new: str, message: str) -> None:
    text = GOOD.replace(old, new, 1)
    assert text != GOOD, what
    with pytest.raises(BulletinError) as exc:
        parse(text, project.deployment)
    assert str(exc.value).startswith("b.md: ")
    assert message in str(exc.value)


def test_body_over_twenty_thousand_characters(project: Project) -> None:
    text = GOOD.replace("Bà con gia hạn", "Bà con " + "a " * 10_001 + "gia hạn")
    with pytest.raises(BulletinError, match="more than 20000") as exc:
        parse(text, project.deployment)
    assert exc.value.code == "bulletin.field.too_long" and exc.value.fields["field"] == "body"


def test_text_is_nfc_and_html_is_stripped_with_a_warning(project: Project) -> None:
    text = unicodedata.normalize("NFD", GOOD.replace("Bà con gia hạn", "<b>Bà con</b> gia hạn"))
    assert "<b>" in text
    parsed = parse_bulletin("\ufeff" + text, where="b.md", deployment=project.deployment)
    b = parsed.bulletin
    assert b.title == "Gia hạn thẻ BHYT" and unicodedata.is_normalized("NFC", b.body)
    assert b.body == "Bà con gia hạn thẻ trước ngày 25/12/2026."
    assert parsed.warnings == ("b.md: HTML tags were removed from the text",)


def test_text_written_as_toml_escapes_is_nfc(project: Project) -> None:
    text = GOOD.replace('title = "Gia hạn thẻ BHYT"', 'title = "Gia ha\\u0323n the\\u0309 BHYT"')
    b = parse_bulletin(text, where="b.md", deployment=project.deployment).bulletin
    assert b.title == "Gia hạn thẻ BHYT"


HOSTILE = [
    # (what, the title as written in the TOML, code, the character named)
    ("vertical tab", "Tin\x0b", "bulletin.field.control_char", "U+000B"),
    ("escape", "Tin\x1b[31m", "bulletin.field.control_char", "U+001B"),
    ("right-to-left override", "Tin\u202e", "bulletin.field.bidi", "U+202E"),
    ("first strong isolate", "Tin\u2068", "bulletin.field.bidi", "U+2068"),
    ("C1 control", "Tin\x85", "bulletin.field.control_char", "U+0085"),
    ("delete", "Tin\x7f", "bulletin.field.control_char", "U+007F"),
    ("zero-width space", "Tin\u200b", "bulletin.field.invisible", "U+200B"),
    ("tag character", "Tin\U000e0041", "bulletin.field.invisible", "U+E0041"),
    ("escape as a TOML escape", "Tin\\u001b", "bulletin.field.control_char", "U+001B"),
    ("override as a TOML escape", "Tin\\u202E", "bulletin.field.bidi", "U+202E"),
    ("a line break as a TOML escape", "Tin\\nmới", "bulletin.field.newline", "U+000A"),
]


@pytest.mark.parametrize(("what", "title", "code", "char"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_characters_in_the_title_are_refused_naming_field_and_line(
    project: Project, what: str, title: str, code: str, char: str
) -> None:
    text = GOOD.replace('title = "Gia hạn thẻ BHYT"', f'title = "{title}"')
    with pytest.raises(BulletinError) as exc:
        parse(text, project.deployment)
    err = exc.value
    escaped = "\\" in title  # written as a TOML escape: counted in the title, else in the line
    at = "character 4" if escaped else "column 13"
    assert str(err).startswith(f"b.md: line 2: title: {at} ({char}"), str(err)
    assert err.code == code and err.fields["field"] == "title" and err.fields["line"] == 2
    assert err.fields["char"] == char
    assert not any(ch in str(err) for ch in "\x0b\x1b\u202e\x85\x7f\u200b")  # named, never echoed


def test_hostile_characters_in_the_body_name_the_body_and_its_line(project: Project) -> None:
    text = GOOD.replace("Bà con gia hạn", "Bà con\n\ngia\x07 hạn")
    with pytest.raises(BulletinError) as exc:
        parse(text, project.deployment)
    assert str(exc.value).startswith("b.md: line 14: body: column 4 (U+0007")
    assert exc.value.code == "bulletin.field.control_char" and exc.value.fields["line"] == 14


def test_tab_and_newline_are_text(project: Project) -> None:
    b = parse_bulletin(
        GOOD.replace("Bà con gia hạn", "Bà con\tgia\n\nhạn"), where="b.md", deployment=project.deployment
    ).bulletin
    assert "\n\nhạn" in b.body


@pytest.mark.parametrize(("field", "limit"), [("title", 200), ("source", 200), ("reference", 200), ("policy", 200)])
def test_one_line_fields_have_a_length_limit(project: Project, field: str, limit: int) -> None:
    extra = {"policy": 'policy = "{}"\nstage = "promulgated"\n'}.get(field)
    if extra:
        text = GOOD.replace("+++\ntitle", "+++\n" + extra.format("x" * (limit + 1)) + "title")
        ok = GOOD.replace("+++\ntitle", "+++\n" + extra.format("x" * limit) + "title")
    else:
        line = next(x for x in GOOD.splitlines() if x.startswith(f"{field} ="))
        text = GOOD.replace(line, f'{field} = "{"x" * (limit + 1)}"')
        ok = GOOD.replace(line, f'{field} = "{"x" * limit}"')
    parse(ok, project.deployment)
    with pytest.raises(BulletinError) as exc:
        parse(text, project.deployment)
    assert f"{field}: {limit + 1} characters, more than {limit}" in str(exc.value)
    assert exc.value.code == "bulletin.field.too_long"
    assert exc.value.fields["limit"] == limit and exc.value.fields["field"] == field


def test_a_five_thousand_character_title_is_refused(project: Project) -> None:
    with pytest.raises(BulletinError) as exc:
        parse(GOOD.replace("Gia hạn thẻ BHYT", "Gia hạn " * 625), project.deployment)
    assert exc.value.code == "bulletin.field.too_long" and exc.value.fields["line"] == 2


def test_errors_carry_code_file_field_and_line(project: Project) -> None:
    with pytest.raises(BulletinError) as exc:
        parse(GOOD.replace('category = "notice"', 'category = "news"'), project.deployment)
    assert exc.value.code == "bulletin.category.unknown"
    assert exc.value.fields == {
        "file": "b.md",
        "field": "category",
        "line": 3,
        "value": "news",
        "allowed": "policy, notice, emergency, storm, flood",
    }


def test_not_utf8(project: Project, tmp_path: Path) -> None:
    bad = tmp_path / "latin1.md"
    bad.write_bytes(GOOD.encode("utf-8").replace("Bà".encode(), b"B\xe0"))
    with pytest.raises(BulletinError, match=r"latin1\.md: not UTF-8"):
        read_bulletin_files([bad], deployment=project.deployment)


def test_group_and_commune_targets(project: Project) -> None:
    text = GOOD.replace('targets = ["all"]', 'targets = ["bat-xat", "02803"]')
    b = parse_bulletin(text, where="b.md", deployment=project.deployment).bulletin
    assert b.targets == ("bat-xat", "02803")
