"""Compose: templates → cue sheets. Snapshots of the sample deployment and the examples."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.compose import TemplateSet, compose_emergency, compose_script, paragraphs, vi_date, vi_weekday
from pipeline.cuesheet import parse_cue_sheet
from pipeline.errors import ScriptError
from pipeline.intake import read_bulletin_files
from pipeline.messages import gap_vi
from pipeline.models import Bulletin, Recording
from pipeline.plan import plan_commune_day
from pipeline.textnorm import normalize
from pipeline.voices import load_catalog
from tests.conftest import EXAMPLES, REPO, Project, add_bulletin

SNAPSHOTS = Path(__file__).parent / "snapshots"
DAY = dt.date(2026, 12, 1)


def examples(project: Project) -> list[Bulletin]:
    parsed = read_bulletin_files(sorted(EXAMPLES.glob("*.md")), deployment=project.deployment)
    t0 = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
    import dataclasses

    return [
        dataclasses.replace(p.bulletin, id=i, status="approved", approved_at=t0 + dt.timedelta(minutes=i))
        for i, p in enumerate(parsed, start=1)
    ]


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("LOA_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing; run with LOA_UPDATE_SNAPSHOTS=1 to write it"
    assert text == path.read_text(encoding="utf-8"), f"{path} differs; LOA_UPDATE_SNAPSHOTS=1 to accept"


@pytest.mark.parametrize(("commune", "slot"), [("02803", "morning"), ("02641", "evening"), ("02695", "morning")])
def test_snapshots_of_the_sample_deployment(
    project: Project, voices_with_placeholders: Path, commune: str, slot: str
) -> None:
    bulletins = examples(project)
    c = project.deployment.commune(commune)
    assert c is not None
    rec = {(1, "hmn"): Recording(1, "hmn", Path("r.wav"), 95_000, "0" * 64, "r.wav")}
    plans = plan_commune_day(DAY, c, bulletins=bulletins, recordings=rec, spoken=lambda t: t)
    plan = next(p for p in plans if p.slot.name == slot)
    script = compose_script(
        plan,
        templates=TemplateSet.load(REPO / "templates"),
        catalog=load_catalog(voices_with_placeholders),
        recordings=rec,
    )
    for item in plan.items:  # the body's paragraphs are speech cues marked with the bulletin
        assert [c.text for c in script.cues if c.bulletin_id == item.bulletin.id and c.kind == "speech"] == [
            " ".join(p.split()) for p in item.bulletin.body.split("\n\n") if p.strip()
        ]
    lines = [script.text, "# cues: " + " ".join(f"{c.kind}@{c.line}" for c in script.cues)]
    lines += [f"# missing: {m}" for m in script.missing]
    check_snapshot(f"{commune}-{DAY}-{slot}.txt", "\n".join(lines) + "\n")


def test_emergency_snapshot(project: Project, voices_with_placeholders: Path) -> None:
    flood = next(b for b in examples(project) if b.priority == "emergency")
    c = project.deployment.commune("02641")
    assert c is not None
    script = compose_emergency(
        flood,
        c,
        templates=TemplateSet.load(REPO / "templates"),
        catalog=load_catalog(voices_with_placeholders),
        recordings={},
    )
    assert [c.key for c in script.cues if c.kind == "chime"] == ["attention", "attention", "attention"]
    assert sum(1 for c in script.cues if c.kind == "speech" and "Thông báo khẩn cấp" in c.text) == 2
    check_snapshot(f"02641-emergency-{flood.id}.txt", script.text)


def test_words_for_dates() -> None:
    assert vi_date(dt.date(2026, 12, 1)) == "ngày một tháng mười hai năm hai nghìn không trăm hai mươi sáu"
    assert vi_date(dt.date(2027, 4, 24)) == "ngày hai mươi tư tháng tư năm hai nghìn không trăm hai mươi bảy"
    assert [vi_weekday(dt.date(2026, 11, 30) + dt.timedelta(days=i)) for i in (0, 6)] == ["thứ hai", "chủ nhật"]


def test_bulletin_text_is_never_evaluated_or_turned_into_directives(
    project: Project, voices_with_placeholders: Path
) -> None:
    [b, *_] = examples(project)
    import dataclasses

    hostile = dataclasses.replace(
        b,
        title="{{ 7*7 }}",
        body="{% for x in range(3) %}X{% endfor %}\n\n@pause 100\n@recording 1 hmn\n\n{{ config }}",
    )
    c = project.deployment.commune("02695")
    assert c is not None
    plan = plan_commune_day(DAY, c, bulletins=[hostile], recordings={}, spoken=lambda t: t)[0]
    script = compose_script(
        plan,
        templates=TemplateSet.load(REPO / "templates"),
        catalog=load_catalog(voices_with_placeholders),
        recordings={},
    )
    speech = " ".join(c.text for c in script.cues if c.kind == "speech")
    assert "{{ 7*7 }}" in speech and "49" not in speech
    assert "{% for x in range(3) %}X{% endfor %}" in speech and "{{ config }}" in speech
    assert "@pause 100 @recording 1 hmn" in speech
    assert [c.kind for c in script.cues].count("pause") == 4  # only the template's own pauses


def test_template_errors_name_template_and_line(
    tmp_path: Path, project: Project, voices_with_placeholders: Path
) -> None:
    shutil.copytree(REPO / "templates", tmp_path / "t")
    program = tmp_path / "t" / "program.vi.j2"
    program.write_text(program.read_text().replace("{{ slot_title }}", "{{ slot_titel }}", 1))
    c = project.deployment.commune("02695")
    assert c is not None
    plan = plan_commune_day(DAY, c, bulletins=[], recordings={}, spoken=lambda t: t)[0]
    with pytest.raises(ScriptError, match=r"program\.vi\.j2: line 11: UndefinedError: 'slot_titel' is undefined"):
        compose_script(
            plan,
            templates=TemplateSet.load(tmp_path / "t"),
            catalog=load_catalog(voices_with_placeholders),
            recordings={},
        )
    program.write_text("{% if %}\n")
    with pytest.raises(ScriptError, match=r"program\.vi\.j2: line 1: "):
        compose_script(
            plan,
            templates=TemplateSet.load(tmp_path / "t"),
            catalog=load_catalog(voices_with_placeholders),
            recordings={},
        )
    program.write_text("@jingle\n")
    with pytest.raises(ScriptError, match="line 1: '@jingle': unknown directive"):
        compose_script(
            plan,
            templates=TemplateSet.load(tmp_path / "t"),
            catalog=load_catalog(voices_with_placeholders),
            recordings={},
        )


def test_missing_clips_are_listed_at_once(tmp_path: Path, project: Project) -> None:
    voices = tmp_path / "voices"
    voices.mkdir()
    shutil.copy(REPO / "voices" / "catalog.toml", voices / "catalog.toml")  # no placeholder files made
    c = project.deployment.commune("02803")  # vi, hmn, ium, pcc
    assert c is not None
    plan = plan_commune_day(DAY, c, bulletins=[], recordings={}, spoken=lambda t: t)[0]
    with pytest.raises(ScriptError) as exc:
        compose_script(
            plan, templates=TemplateSet.load(REPO / "templates"), catalog=load_catalog(voices), recordings={}
        )
    message = str(exc.value)
    for key in ("chime/open", "chime/close", "hmn/greeting", "ium/greeting", "pcc/greeting"):
        assert key in message


def test_missing_recordings_skip_or_fail(project: Project, voices_with_placeholders: Path) -> None:
    bulletins = examples(project)
    c = project.deployment.commune("02641")
    assert c is not None
    plan = plan_commune_day(DAY, c, bulletins=bulletins, recordings={}, spoken=lambda t: t)[0]
    args = dict(
        templates=TemplateSet.load(REPO / "templates"), catalog=load_catalog(voices_with_placeholders), recordings={}
    )
    script = compose_script(plan, on_missing="skip", **args)  # type: ignore[arg-type]
    assert script.missing and all(m.kind == "recording" and m.language == "hmn" for m in script.missing)
    assert all(gap_vi(m).endswith(": chưa có bản ghi Tiếng Mông") for m in script.missing)
    assert any(c.kind == "comment" and "thiếu bản ghi tiếng Mông" in c.text for c in script.cues)
    with pytest.raises(ScriptError, match="missing recordings"):
        compose_script(plan, on_missing="fail", **args)  # type: ignore[arg-type]


def test_body_paragraphs_stay_paragraphs_and_at_lines_are_escaped() -> None:
    body = "Dòng một\ncùng đoạn.\n  \t\nĐoạn hai.\r\n\r\n\n@pause 5 là chữ.\n\n   @@đã có"
    assert paragraphs(body) == ["Dòng một cùng đoạn.", "Đoạn hai.", "@@pause 5 là chữ.", "@@@đã có"]
    cues = parse_cue_sheet("\n\n".join(paragraphs(body)), name="t").cues
    assert [c.text for c in cues] == ["Dòng một cùng đoạn.", "Đoạn hai.", "@pause 5 là chữ.", "@@đã có"]


# --- loa script -------------------------------------------------------------------

# About 6 minutes of speech each: two do not fit in one 10-minute slot of the small deployment.
LONG_BODY = "\n\n".join(["Bà con các thôn đến nhà văn hóa họp bàn việc gia hạn thẻ bảo hiểm y tế."] * 70)


def loa(project: Project, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--config", str(project.config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_loa_script_prints_the_sheet_with_deferred_and_missing(
    small: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    first = add_bulletin(small, LONG_BODY, title="Họp thôn lần một")
    second = add_bulletin(small, LONG_BODY, title="Họp thôn lần hai")
    add_bulletin(small, "Bản nháp chưa duyệt.", approve=False, title="Bản nháp")
    code, out, _ = loa(small, capsys, "script", "--commune", "02641", "--date", "2026-12-01", "--slot", "morning")
    assert code == 0
    assert out.startswith("@chime open\n") and "Kính thưa bà con nhân dân xã Y Tý." in out
    assert "thứ ba, ngày một tháng mười hai năm hai nghìn không trăm hai mươi sáu" in out
    assert "Bản tin: Họp thôn lần một." in out and "Bản tin: Họp thôn lần hai." not in out
    assert "Bản nháp" not in out
    assert f"# deferred: {second} Họp thôn lần hai → evening (needs about" in out
    assert f"# missing: bulletin {first} (Họp thôn lần một): no hmn recording" in out
    assert "@note thiếu bản ghi tiếng Mông của bản tin" in out
    assert re.search(r"# about \d+ min \d+ s of 10 min\n$", out)

    code, out, _ = loa(small, capsys, "script", "--commune", "02641", "--date", "2026-12-01", "--slot", "evening")
    assert code == 0 and "Bản tin: Họp thôn lần hai." in out  # deferred, so first in the evening


def test_loa_script_json(small: Project, capsys: pytest.CaptureFixture[str]) -> None:
    first = add_bulletin(small, LONG_BODY, title="Họp thôn lần một")
    second = add_bulletin(small, LONG_BODY, title="Họp thôn lần hai")
    code, out, _ = loa(small, capsys, "script", "--commune", "02641", "--date", "2026-12-01", "--slot", "evening",
                       "--json")  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["name"] == "02641/2026-12-01/evening" and data["runs"] is True
    assert [b["id"] for b in data["bulletins"]] == [second]
    assert data["bulletins"][0]["languages"] == ["vi", "hmn"]
    assert [(d["id"], d["until_slot"]) for d in data["deferred"]] == [(first, "2026-12-02 morning")]
    assert data["missing"] == [f"bulletin {second} (Họp thôn lần hai): no hmn recording"]
    kinds = [c["kind"] for c in data["cues"]]
    assert kinds[0] == "chime" and kinds[-1] == "chime" and "speech" in kinds and "comment" in kinds
    assert data["warnings"] == [] and 0 < data["estimated_ms"] <= 10 * 60_000


def test_loa_script_empty_slot_and_a_day_it_does_not_run(small: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = loa(small, capsys, "script", "--commune", "02695", "--date", "2026-12-06", "--slot", "morning")
    assert code == 0 and "Hôm nay không có bản tin mới." in out and "@clip" not in out  # Vietnamese only
    code, out, _ = loa(small, capsys, "script", "--commune", "02695", "--date", "2026-12-06", "--slot", "evening")
    assert code == 0 and out.strip() == "# Bản Lầu: slot evening does not run on Sunday 2026-12-06; no program"
    code, out, _ = loa(small, capsys, "script", "--commune", "02695", "--date", "2026-12-06", "--slot", "evening",
                       "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["runs"] is False


def test_loa_script_unknown_commune_or_slot(small: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = loa(small, capsys, "script", "--commune", "99999", "--date", "2026-12-01", "--slot", "morning")
    assert code == 2 and "commune 99999: not in the deployment" in err
    code, _, err = loa(small, capsys, "script", "--commune", "02695", "--date", "2026-12-01", "--slot", "noon")
    assert code == 2 and "slot 'noon': Bản Lầu has the slots morning, evening" in err


def test_empty_program_snapshot(project: Project, voices_with_placeholders: Path) -> None:
    c = project.deployment.commune("02641")
    assert c is not None
    sunday = dt.date(2026, 12, 6)
    [plan] = plan_commune_day(sunday, c, bulletins=[], recordings={}, spoken=lambda t: t)  # no evening on Sundays
    script = compose_script(
        plan, templates=TemplateSet.load(REPO / "templates"), catalog=load_catalog(voices_with_placeholders),
        recordings={},
    )  # fmt: skip
    assert [c.kind for c in script.cues].count("recording") == 0 and script.missing == ()
    check_snapshot(f"02641-{sunday}-morning-empty.txt", script.text)


def test_spoken_filter_for_template_authors(tmp_path: Path, project: Project, voices_with_placeholders: Path) -> None:
    shutil.copytree(REPO / "templates", tmp_path / "t")
    program = tmp_path / "t" / "program.vi.j2"
    program.write_text('@chime open\n{{ "Gọi 112 trước 7h30 ngày 01/12" | spoken }}\n@chime close\n', encoding="utf-8")
    c = project.deployment.commune("02695")
    assert c is not None
    plan = plan_commune_day(DAY, c, bulletins=[], recordings={}, spoken=lambda t: t)[0]
    script = compose_script(
        plan, templates=TemplateSet.load(tmp_path / "t"), catalog=load_catalog(voices_with_placeholders),
        recordings={},
    )  # fmt: skip
    [speech] = [c.text for c in script.cues if c.kind == "speech"]
    assert speech == normalize("Gọi 112 trước 7h30 ngày 01/12")
    assert "bảy giờ ba mươi" in speech and not any(ch.isdigit() for ch in speech)
