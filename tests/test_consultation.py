"""Consultations: intake of [consultation], the store, summary, exports, personal data."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.errors import BulletinError, UsageError
from pipeline.feedback.consultation import mask_phone, normalize_phone, purge_expired, summarize
from pipeline.intake import parse_bulletin
from pipeline.models import Answer
from pipeline.store import Database
from pipeline.store import bulletins as bstore
from pipeline.store import consultations as store
from tests.conftest import EXAMPLES, CliResult, Project

EXAMPLE = EXAMPLES / "06-lay-y-kien-du-thao-ho-tro-giong.md"

DRAFT = """+++
title = "Dự thảo hỗ trợ giống"
category = "policy"
priority = "routine"
source = "Sở Nông nghiệp và Môi trường"
valid_from = 2026-12-02
valid_until = 2026-12-20
targets = ["bat-xat"]
languages = ["vi", "hmn"]

[consultation]
code = "GY27"
opens = 2026-12-02
closes = 2026-12-20
agency = "Sở Nông nghiệp và Môi trường tỉnh Lào Cai"

[[consultation.question]]
text = "Bà con có đồng ý với mức hỗ trợ không?"
kind = "yesno"

[[consultation.question]]
text = "Cần giống nào nhất?"
kind = "choice"
choices = ["Lúa", "Ngô", "Lợn"]

[[consultation.question]]
text = "Ý kiến khác?"
kind = "text"
+++
Nội dung dự thảo.
"""


def test_the_example_declares_a_campaign(project: Project) -> None:
    b = parse_bulletin(EXAMPLE.read_text(encoding="utf-8"), where="e.md", deployment=project.deployment).bulletin
    assert b.consultation is not None
    assert b.consultation.code == "GY27"
    assert [q.kind for q in b.consultation.questions] == ["yesno", "choice", "text"]
    assert b.policy == "Hỗ trợ giống cây trồng, vật nuôi năm 2027" and b.stage == "draft"


def test_policy_defaults_to_the_title_for_a_consultation(project: Project) -> None:
    b = parse_bulletin(DRAFT, where="d.md", deployment=project.deployment).bulletin
    assert b.policy == "Dự thảo hỗ trợ giống" and b.stage == "draft"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('kind = "yesno"', 'kind = "maybe"', r"d\.md: line 19: consultation\.question\[1\]\.kind: 'maybe' is not one"),
        (
            'choices = ["Lúa", "Ngô", "Lợn"]',
            'choices = ["Lúa"]',
            r"line 24: consultation\.question\[2\]\.choices: a choice",
        ),
        ('code = "GY27"', 'code = "gy 27"', r"line 12: consultation\.code: must be 1–4 capital letters"),
        ("closes = 2026-12-20", "closes = 2026-11-20", r"line 14: consultation\.closes: 2026-11-20 is before opens"),
        ('agency = "Sở', 'boss = "x"\nagency = "Sở', r"line 15: consultation\.boss: unknown field"),
        (
            'kind = "text"',
            'kind = "text"\nchoices = ["a", "b"]',
            r"consultation\.question\[3\]\.choices: only a choice",
        ),
        ("opens = 2026-12-02", 'opens = "2/12"', r"line 13: consultation\.opens: must be a date"),
        ("[consultation]", 'stage = "promulgated"\n[consultation]', r"stage: a consultation is held on a draft"),
    ],
)
def test_bad_consultations_name_file_field_and_line(project: Project, old: str, new: str, message: str) -> None:
    assert old in DRAFT
    with pytest.raises(BulletinError, match=message):
        parse_bulletin(DRAFT.replace(old, new, 1), where="d.md", deployment=project.deployment)


def test_at_most_five_questions(project: Project) -> None:
    extra = '\n[[consultation.question]]\ntext = "Thêm?"\nkind = "text"\n' * 3
    text = DRAFT.replace("+++\nNội dung", extra + "+++\nNội dung")
    with pytest.raises(BulletinError, match=r"line 38: consultation\.question: 6 questions; at most 5"):
        parse_bulletin(text, where="d.md", deployment=project.deployment)


def test_policy_without_stage_is_refused(project: Project) -> None:
    text = DRAFT.split("[consultation]")[0] + "+++\nx\n"
    text = text.replace('languages = ["vi", "hmn"]', 'languages = ["vi"]\npolicy = "P"')
    with pytest.raises(BulletinError, match=r"stage: missing"):
        parse_bulletin(text, where="d.md", deployment=project.deployment)


def stored_campaign(project: Project) -> tuple[Database, int]:
    db = project.db()
    b = parse_bulletin(DRAFT, where="d.md", deployment=project.deployment).bulletin
    [(saved, outcome)] = bstore.save_bulletins(db, [b])
    assert outcome == "added" and saved.consultation == b.consultation
    c = store.get_campaign(db, "gy27")
    return db, c.id


def test_campaign_is_stored_with_its_bulletin_and_codes_are_unique(project: Project) -> None:
    db, cid = stored_campaign(project)
    c = store.get_campaign(db, cid)
    assert c.spec.code == "GY27" and c.targets == ("bat-xat",) and c.bulletin_status == "draft"
    other = parse_bulletin(DRAFT.replace("Dự thảo hỗ trợ giống", "Khác"), where="o.md", deployment=project.deployment)
    with pytest.raises(UsageError, match=r"o\.md: consultation\.code: 'GY27' is already the code"):
        bstore.save_bulletins(db, [other.bulletin])
    assert len(bstore.list_bulletins(db)) == 1  # nothing half-stored
    # a revision with changed dates updates the campaign
    revised = parse_bulletin(
        DRAFT.replace("closes = 2026-12-20", "closes = 2026-12-19"), where="d.md", deployment=project.deployment
    )
    bstore.save_bulletins(db, [revised.bulletin])
    assert store.get_campaign(db, cid).spec.closes == dt.date(2026, 12, 19)


# --- hand-counted fixture ---------------------------------------------------------
#: (channel, commune, language, people, values, phone); counted by hand below.
FIXTURE = [
    ("web", "02641", "vi", 1, ("yes", "Lúa", "Tăng mức hỗ trợ"), "0912345678"),
    ("web", "02641", "vi", 1, ("yes", "Ngô", ""), ""),
    ("web", "02647", "vi", 1, ("no", "Lúa", '=HYPERLINK("x")'), "0987654321"),
    ("meeting", "02647", "hmn", 35, ("yes", "Lợn", ""), ""),
    ("device", "02680", "vi", 1, ("", "Lúa", ""), ""),
    ("web", "02641", "vi", 1, ("no", "", "trùng"), "0912345678"),  # to be hidden
]
HAND = {"answers": 5, "people": 39, "yes": 3, "no": 1, "q1_empty": 1, "Lúa": 3, "Ngô": 1, "Lợn": 1, "texts": 2}


def fill(db: Database, cid: int) -> list[Answer]:
    out = []
    for channel, commune, lang, people, values, phone in FIXTURE:
        out.append(
            store.add_answer(
                db,
                Answer(
                    consultation_id=cid,
                    channel=channel,
                    values=values,
                    commune=commune,
                    language=lang,
                    people=people,
                    phone=phone,
                    name="Giàng A Páo" if phone else "",
                    consent=bool(phone),
                    created_at=dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC),
                ),
            )
        )
    store.moderate(db, cid, out[-1].id or 0, hidden=True)
    return out


def test_summary_matches_the_hand_count(project: Project) -> None:
    db, cid = stored_campaign(project)
    fill(db, cid)
    c = store.get_campaign(db, cid)
    s = summarize(c, store.list_answers(db, cid), project.deployment)
    assert (s.answers, s.people, s.hidden) == (HAND["answers"], HAND["people"], 1)
    assert dict(s.questions[0].counts) == {"Có": HAND["yes"], "Không": HAND["no"]}
    assert s.questions[0].unanswered == HAND["q1_empty"]
    assert dict(s.questions[1].counts) == {"Lúa": HAND["Lúa"], "Ngô": HAND["Ngô"], "Lợn": HAND["Lợn"]}
    assert dict(s.questions[2].counts) == {"Có ý kiến": HAND["texts"]}
    assert dict(s.by_channel) == {"Trang web": 3, "Họp thôn": 1, "Loa thông minh / kiosk": 1}
    assert dict(s.by_language) == {"Tiếng Việt": 4, "Tiếng Mông": 1}


def test_moderation_merge_and_its_guards(project: Project) -> None:
    db, cid = stored_campaign(project)
    a = fill(db, cid)
    merged = store.moderate(db, cid, a[1].id or 0, merged_into=a[0].id, topic="mức hỗ trợ")
    assert merged.merged_into == a[0].id and merged.topic == "mức hỗ trợ"
    with pytest.raises(UsageError, match="into itself"):
        store.moderate(db, cid, a[0].id or 0, merged_into=a[0].id)
    with pytest.raises(UsageError, match="is itself merged"):
        store.moderate(db, cid, a[2].id or 0, merged_into=a[1].id)
    s = summarize(store.get_campaign(db, cid), store.list_answers(db, cid), project.deployment)
    assert s.answers == HAND["answers"] - 1 and s.merged == 1


def test_cli_export_counts_match_and_xlsx_opens(
    project: Project, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    import openpyxl

    db, cid = stored_campaign(project)
    fill(db, cid)
    result = cli("consultation", "export", "GY27", "--format", "csv")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "# loa.consultation-export/1"
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
    assert len(rows) == HAND["answers"]
    assert sum(r["câu 1"] == "Có" for r in rows) == HAND["yes"]
    assert sum(r["câu 2"] == "Lúa" for r in rows) == HAND["Lúa"]
    assert sum(int(r["số người"]) for r in rows) == HAND["people"]
    assert {r["điện thoại"] for r in rows} == {"091****678", "098****321", ""}  # masked by default
    assert '\'=HYPERLINK("x")' in {r["câu 3"] for r in rows}  # no formula injection
    full = cli("consultation", "export", "GY27", "--phones").out
    assert "0912345678" in full

    out = tmp_path / "gy27.xlsx"
    assert cli("consultation", "export", "GY27", "-f", "xlsx", "-o", str(out)).code == 0
    wb = openpyxl.load_workbook(out)
    summary = {r[0]: r[1] for r in wb["Tổng hợp"].iter_rows(values_only=True) if r and r[0]}
    assert summary["Số ý kiến"] == HAND["answers"] and summary["Số người"] == HAND["people"]
    assert summary["Có"] == HAND["yes"] and summary["Lúa"] == HAND["Lúa"]
    assert wb["Ý kiến"].max_row == HAND["answers"] + 1

    shown = cli("consultation", "show", "GY27", "--json").json()
    assert shown["public_path"] == "/y-kien/GY27"  # type: ignore[index]
    assert shown["summary"]["questions"][0] == {"Có": 3, "Không": 1, "_unanswered": 1}  # type: ignore[index]
    assert shown["communes"] == [c.code for c in project.deployment.targeted(("bat-xat",))]  # type: ignore[index]
    assert cli("consultation", "export", "GY27", "--format", "pdf").code == 2
    assert cli("consultation", "show", "ZZ9").code == 2


def test_retention_erases_personal_fields_and_keeps_counts(project: Project) -> None:
    db, cid = stored_campaign(project)
    fill(db, cid)
    settings = project.settings
    voice = settings.data_dir / "consultations" / "1.ogg"
    voice.parent.mkdir(parents=True)
    voice.write_bytes(b"x")
    first = store.list_answers(db, cid)[0]
    t = db.table("answers")
    with db.begin() as conn:
        conn.execute(t.update().where(t.c.id == first.id).values(recording="consultations/1.ogg"))
    c = store.get_campaign(db, cid)
    before = summarize(c, store.list_answers(db, cid), project.deployment)
    # not yet: retention is 180 days by default
    assert purge_expired(db, settings, now=dt.datetime(2027, 1, 1, tzinfo=dt.UTC)) == 0
    assert purge_expired(db, settings, now=dt.datetime(2027, 7, 1, tzinfo=dt.UTC)) == 3
    after_answers = store.list_answers(db, cid)
    assert all(a.name == "" and a.phone == "" and a.recording == "" for a in after_answers)
    assert {a.erased_at is not None for a in after_answers if a.consent} == {True}
    assert not voice.exists()
    after = summarize(c, after_answers, project.deployment)
    assert dataclasses.replace(after) == before
    assert [a.values for a in after_answers] == [f[4] for f in FIXTURE]


def test_a_person_gets_and_erases_their_answers(project: Project, cli: Callable[..., CliResult]) -> None:
    db, cid = stored_campaign(project)
    fill(db, cid)
    got = cli("consultation", "person", "+84 912 345 678").json()
    assert got["phone"] == "0912345678" and len(got["answers"]) == 2  # type: ignore[index,arg-type]
    erased = cli("consultation", "person", "0912345678", "--erase")
    assert erased.code == 0
    assert store.answers_by_phone(db, "0912345678") == []
    assert store.answers_by_phone(db, "0987654321") != []  # someone else's stay
    assert len(store.list_answers(db, cid)) == len(FIXTURE)
    assert cli("consultation", "person", "12ab").code == 2


def test_phone_helpers() -> None:
    assert normalize_phone("091 234 5678") == "0912345678"
    assert normalize_phone("+84912345678") == "0912345678"
    assert normalize_phone("") == ""
    assert mask_phone("0912345678") == "091****678"
    with pytest.raises(UsageError):
        normalize_phone("123")


def test_purge_job_runs_from_a_config_path(project: Project) -> None:
    from pipeline.feedback.consultation import purge_job

    db, cid = stored_campaign(project)
    old = store.add_answer(
        db,
        Answer(
            consultation_id=cid,
            channel="web",
            values=("yes", "", ""),
            phone="0912345678",
            consent=True,
            created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        ),
    )
    purge_job(str(project.config))
    [after] = store.list_answers(db, cid)
    assert after.id == old.id and after.phone == "" and after.values == ("yes", "", "")
    purge_job(str(project.root / "missing.toml"))  # logs, never raises


def test_airings_say_what_aired_where_in_which_languages(project: Project) -> None:
    from pipeline.models import Delivery, Program, Segment
    from pipeline.store import runs

    db, cid = stored_campaign(project)
    bid = store.get_campaign(db, cid).bulletin_id

    def seg(key: str, lang: str, bulletin: int | None) -> Segment:
        return Segment(key, Path(f"/x/{key}.mp3"), 1000, "speech", lang, "t", 10, "0" * 64, bulletin_id=bulletin)

    segments = [seg("a" * 64, "vi", bid), seg("b" * 64, "hmn", bid), seg("c" * 64, "vi", None)]
    runs.record_segments(db, segments)
    day = dt.date(2026, 12, 3)
    start = dt.datetime(2026, 12, 3, 5, 30, tzinfo=dt.UTC)
    runs.record_program(
        db, Program("02641/2026-12-03/morning", "02641", day, "morning", start, "routine", day, tuple(segments))
    )
    runs.record_program(
        db, Program("02647/2026-12-03/morning", "02647", day, "morning", start, "routine", day, (segments[2],))
    )
    runs.record_delivery(db, Delivery("y-ty-loa", "02641", "2026-12-03", "delivered"))
    runs.record_delivery(db, Delivery("y-ty-radio", "02641", "2026-12-03", "failed"))
    [aired] = store.airings(db, [bid])
    assert (aired["commune"], aired["slot"], aired["languages"]) == ("02641", "morning", ["hmn", "vi"])
    assert aired["delivered"] == ["y-ty-loa"]
    assert store.airings(db, []) == [] and store.airings(db, [999]) == []
    assert store.policies(db) == ["Dự thảo hỗ trợ giống"]
    assert [b.id for b in store.policy_bulletins(db, "Dự thảo hỗ trợ giống")] == [bid]


def test_cli_followup_and_report(project: Project, cli: Callable[..., CliResult], tmp_path: Path) -> None:
    db, cid = stored_campaign(project)
    fill(db, cid)
    answer = tmp_path / "answer.txt"
    answer.write_text("Sở tiếp thu, nâng mức hỗ trợ giống lúa lên 80%.", encoding="utf-8")
    made = cli("consultation", "followup", "GY27", str(answer), "--json")
    assert made.code == 0, made.err
    bid = made.json()["bulletin_id"]  # type: ignore[index]
    b = bstore.get_bulletin(db, bid)
    assert (
        b.status == "draft" and b.targets == ("bat-xat",) and b.body.startswith("Ý kiến của bà con đã được tiếp thu.")
    )
    assert store.get_campaign(db, cid).agency_answer.endswith("80%.")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    assert cli("consultation", "followup", "GY27", str(empty)).code == 2
    out = tmp_path / "report.html"
    assert cli("consultation", "report", "GY27", "--out", str(out)).code == 0
    html = out.read_text(encoding="utf-8")
    assert "Báo cáo tổng hợp ý kiến nhân dân" in html and "<svg" in html
    assert "0912345678" not in html and "Giàng A Páo" not in html
    assert "=HYPERLINK" in html and "<script" not in html


def test_answer_checks_carry_codes_and_show_vietnamese(project: Project) -> None:
    from pipeline.feedback.consultation import check_values
    from pipeline.messages import vietnamese

    db, cid = stored_campaign(project)
    c = store.get_campaign(db, cid)
    cases = [
        (["yes"], "consultation.values.count", "Có 1 câu trả lời cho 3 câu hỏi của đợt lấy ý kiến GY27."),
        (
            ["maybe", "", ""],
            "consultation.values.yesno",
            "Câu 1: hãy trả lời có (yes) hoặc không (no), không phải «maybe».",
        ),
        (["yes", "Khoai", ""], "consultation.values.choice", "Câu 2: «Khoai» không có trong các lựa chọn."),
    ]
    for raw, code, vi in cases:
        with pytest.raises(UsageError) as caught:
            check_values(c, raw)
        assert caught.value.code == code and vietnamese(caught.value) == vi
        assert str(caught.value).isascii()  # the CLI's English, not the page's Vietnamese
    with pytest.raises(UsageError) as bad_phone:
        normalize_phone("123")
    assert vietnamese(bad_phone.value) == "Số điện thoại chưa đúng: 10 hoặc 11 chữ số, bắt đầu bằng số 0."
