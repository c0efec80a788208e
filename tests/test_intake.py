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
    with pytest.raises(BulletinError, match="more than 20000"):
        parse(text, project.deployment)


def test_text_is_nfc_without_controls_and_html_is_stripped_with_a_warning(project: Project) -> None:
    text = unicodedata.normalize("NFD", GOOD.replace("Bà con gia hạn", "<b>Bà con</b>\x07 gia\u200b hạn"))
    assert "<b>" in text
    parsed = parse_bulletin(text, where="b.md", deployment=project.deployment)
    b = parsed.bulletin
    assert b.title == "Gia hạn thẻ BHYT" and unicodedata.is_normalized("NFC", b.body)
    assert b.body == "Bà con gia hạn thẻ trước ngày 25/12/2026."
    assert parsed.warnings == ("b.md: HTML tags were removed from the text",)


def test_not_utf8(project: Project, tmp_path: Path) -> None:
    bad = tmp_path / "latin1.md"
    bad.write_bytes(GOOD.encode("utf-8").replace("Bà".encode(), b"B\xe0"))
    with pytest.raises(BulletinError, match=r"latin1\.md: not UTF-8"):
        read_bulletin_files([bad], deployment=project.deployment)


def test_group_and_commune_targets(project: Project) -> None:
    text = GOOD.replace('targets = ["all"]', 'targets = ["bat-xat", "02803"]')
    b = parse_bulletin(text, where="b.md", deployment=project.deployment).bulletin
    assert b.targets == ("bat-xat", "02803")
