"""Hostile text is refused at every door, naming the field: the same rule (``pipeline/textrules.py``).

A title with a vertical tab, one with an escape sequence, one with a right-to-left override and
a 5,000-character title: the command line refuses them with exit 2 and English naming the
field; the web form, the agency API (Markdown and JSON) answer in Vietnamese naming it; CAP
import refuses what XML lets through (a bidi override as ``&#x202E;``, a long headline); the
consultation follow-up refuses the agency's answer with a control character. Nothing is stored.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.store import bulletins as bulletin_store
from pipeline.textrules import LIMITS, first_refused
from tests.conftest import CliResult, Project
from tests.publish_support import make_agency
from tests.test_cap import cap
from tests.test_consultation_web import add_campaign
from tests.test_intake import GOOD
from tests.test_web_pages import FORM, post_form
from tests.test_web_vietnamese import english_in
from tests.web_support import Web, logged_in_csrf

HOSTILE = {
    "vertical tab": ("Tin\x0b mới", "bulletin.field.control_char", "U+000B"),
    "escape": ("Tin\x1b[31m mới", "bulletin.field.control_char", "U+001B"),
    "right-to-left override": ("Tin \u202egnp.exe", "bulletin.field.bidi", "U+202E"),
    "5,000 characters": ("Tin " * 1250, "bulletin.field.too_long", "200"),
}


def _file(title: str) -> str:
    return GOOD.replace('title = "Gia hạn thẻ BHYT"', f'title = "{title}"')


@pytest.mark.parametrize("what", HOSTILE)
def test_the_command_line_refuses_with_exit_2_naming_the_field(
    what: str, cli: Callable[..., CliResult], project: Project, tmp_path: Path
) -> None:
    title, _, named = HOSTILE[what]
    path = tmp_path / "b.md"
    path.write_text(_file(title), encoding="utf-8")
    r = cli("bulletin", "add", str(path))
    assert r.code == 2, r.err
    assert r.err.startswith(f"error: {path}: line 2: title: ") and named in r.err, r.err
    assert first_refused(r.err) is None  # the character is named, never written to the terminal
    assert bulletin_store.list_bulletins(project.db()) == []


def test_the_web_form_and_the_agency_api_refuse_in_vietnamese_naming_the_field(web: Web) -> None:
    editor = web.client("bientap")
    token = make_agency(web.db, "so-yte", ("all",), "Sở Y tế Lào Cai")
    api = web.client()
    auth = {"authorization": f"Bearer {token}"}
    for what, (title, code, named) in HOSTILE.items():
        # the web form: the error beside the title, in Vietnamese
        r = post_form(editor, "/bulletins/new", FORM | {"title": title})
        assert r.status_code == 400, what
        assert 'id="err-title"' in r.text and "Mục «Tiêu đề»" in r.text and named in r.text, what
        assert not english_in(r.text), what
        # the agency API, as the bulletin file and as JSON
        text = _file(title)
        r = api.post("/api/v1/bulletins", content=text.encode(), headers=auth | {"content-type": "text/markdown"})
        assert r.status_code == 422, (what, r.text)
        body = r.json()
        assert (body["code"], body["field"], body["line"]) == (code, "title", 2), what
        assert "Mục «Tiêu đề»" in body["detail"] and named in body["detail"], body
        assert not english_in(f"<p>{body['detail']}</p>"), body["detail"]
        doc = {
            "title": title,
            "category": "notice",
            "priority": "routine",
            "source": "Sở Y tế Lào Cai",
            "valid_from": "2026-12-01",
            "valid_until": "2026-12-14",
            "targets": ["all"],
            "body": "Bà con đưa trẻ đi tiêm.",
        }
        r = api.post(
            "/api/v1/bulletins", content=json.dumps(doc).encode(), headers=auth | {"content-type": "application/json"}
        )
        assert r.status_code == 422, (what, r.text)
        body = r.json()
        assert (body["code"], body["field"], body["line"]) == (code, "title", None), what
        assert "Mục «Tiêu đề»" in body["detail"] and not english_in(f"<p>{body['detail']}</p>"), body
    assert bulletin_store.list_bulletins(web.db) == []


def test_the_consultation_follow_up_refuses_a_hostile_answer(web: Web) -> None:
    cid = add_campaign(web, targets='["02641"]')
    before = len(bulletin_store.list_bulletins(web.db))
    approver = web.client("duyet")
    token = logged_in_csrf(approver, f"/consultations/{cid}")
    for answer, named in (
        ("Sở đã tiếp thu\x1b[2J ý kiến.", "U+001B"),
        ("Sở đã tiếp thu \u2067ý kiến.", "U+2067"),
        ("Sở đã tiếp thu. " * 400, str(LIMITS["consultation.answer"])),
    ):
        r = approver.post(f"/consultations/{cid}/agency-answer", data={"csrf_token": token, "answer": answer})
        assert r.status_code == 400, r.text
        assert "Mục «Phản hồi của cơ quan soạn thảo»" in r.text and named in r.text
        assert not english_in(r.text)
    assert len(bulletin_store.list_bulletins(web.db)) == before


@pytest.mark.parametrize(
    ("headline", "named"),
    [("Lũ quét &#x202E;Y Tý", "U+202E"), ("Lũ quét &#x2066;Y Tý", "U+2066"), ("Lũ quét " * 30, "more than 200")],
)
def test_cap_import_refuses_hostile_text_naming_the_element(
    small: Project, small_cli: Callable[..., CliResult], tmp_path: Path, headline: str, named: str
) -> None:
    path = tmp_path / "alert.xml"
    path.write_text(cap(headline=headline), encoding="utf-8")
    r = small_cli("cap", "import", str(path))
    assert r.code == 2, (r.out, r.err)
    assert ": info/headline: " in r.err and named in r.err, r.err
    assert bulletin_store.list_bulletins(small.db()) == []


def test_what_is_accepted_is_nfc_and_free_of_refused_characters(project: Project) -> None:
    from pipeline.intake import parse_bulletin

    text = _file("Gia ha\u0323n the\u0309 BHYT\tna\u0306m 2027")  # decomposed, with a tab
    b = parse_bulletin(text, where="b.md", deployment=project.deployment).bulletin
    assert b.title == "Gia hạn thẻ BHYT năm 2027" and dt.date(2026, 12, 1) == b.valid_from


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"title": "Tin\x1b[31m"}, "title", "bulletin.field.control_char"),
        ({"source": "UBND \u202exã"}, "source", "bulletin.field.bidi"),
        ({"title": "Tin " * 60}, "title", "bulletin.field.too_long"),
        ({"body": "Bà con\u200b họp."}, "body", "bulletin.field.invisible"),
        ({"title": "Gia ha\u0323n"}, "title", "bulletin.field.not_nfc"),
    ],
)
def test_the_domain_refuses_a_bulletin_no_intake_checked(
    project: Project, change: dict[str, str], field: str, code: str
) -> None:
    """A door that builds a ``Bulletin`` itself still meets the rules: ``lifecycle.submit`` checks them."""
    import dataclasses

    from pipeline import lifecycle
    from pipeline.errors import BulletinError
    from pipeline.intake import parse_bulletin

    good = parse_bulletin(GOOD, where="b.md", deployment=project.deployment).bulletin
    db = project.db()
    with pytest.raises(BulletinError) as exc:
        lifecycle.submit(db, lifecycle.cli(), dataclasses.replace(good, **change), deployment=project.deployment)
    assert exc.value.code == code and exc.value.fields["field"] == field
    assert bulletin_store.list_bulletins(db) == []
    [saved] = [c.bulletin for c in lifecycle.submit_all(db, lifecycle.cli(), [good], deployment=project.deployment)]
    assert saved.id is not None
    with pytest.raises(BulletinError):
        lifecycle.revise(db, lifecycle.cli(), saved.id, dataclasses.replace(good, body="Bà con\x07 họp."))
