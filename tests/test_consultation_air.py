"""On air: a consultation's bulletins carry the call to action in every language of each commune."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.compose import TemplateSet, compose_script, spell_code
from pipeline.intake import parse_bulletin
from pipeline.models import TTS_LANGUAGES
from pipeline.plan import plan_commune_day
from pipeline.textnorm import normalize
from pipeline.voices import load_catalog
from tests.conftest import EXAMPLES, REPO

EXAMPLE = EXAMPLES / "06-lay-y-kien-du-thao-ho-tro-giong.md"
CTA = "Lấy ý kiến nhân dân."


@pytest.fixture
def lao_cai(tmp_path: Path, voices_with_placeholders: Path) -> Path:
    """The sample deployment with generated placeholder clips; returns loa.toml."""
    root = tmp_path / "p"
    shutil.copytree(REPO / "schedules", root / "schedules")
    config = root / "loa.toml"
    config.write_text(
        f'data_dir = "data"\ntemplates_dir = "{REPO / "templates"}"\nvoices_dir = "{voices_with_placeholders}"\n',
        encoding="utf-8",
    )
    return config


def test_every_targeted_commune_hears_the_call_in_each_of_its_languages(voices_with_placeholders: Path) -> None:
    from pipeline.deployment import load_deployment

    deployment = load_deployment(REPO / "schedules")
    b = parse_bulletin(EXAMPLE.read_text(encoding="utf-8"), where="e.md", deployment=deployment).bulletin
    b = dataclasses.replace(b, id=6, status="approved")
    templates = TemplateSet.load(REPO / "templates")
    catalog = load_catalog(voices_with_placeholders)
    communes = deployment.targeted(b.targets)
    assert len(communes) >= 5
    seen_langs: set[str] = set()
    for commune in communes:
        plans = plan_commune_day(dt.date(2026, 12, 3), commune, bulletins=[b], recordings={}, spoken=lambda t: t)
        for plan in plans:
            script = compose_script(plan, templates=templates, catalog=catalog, recordings={})
            speech = [c.text for c in script.cues if c.kind == "speech"]
            assert any(CTA in t and "gờ, i dài, hai, bảy" in t for t in speech), script.name
            ethnic = [lang for lang in commune.languages if lang not in TTS_LANGUAGES]
            clips = [c.key for c in script.cues if c.kind == "clip"]
            notes = [c.text for c in script.cues if c.kind == "comment"]
            for lang in ethnic:
                seen_langs.add(lang)
                assert f"{lang}/consultation" in clips, (script.name, lang)
                clip = catalog.get(f"{lang}/consultation")
                assert clip is not None and clip.file.is_file()
                if clip.placeholder:  # flagged in the script, as `loa voices check` flags it
                    assert any("còn là bản ghi mẫu" in n for n in notes), (script.name, lang, notes)
    assert seen_langs == {"hmn", "ium", "pcc"}


def test_no_call_after_the_campaign_closes(voices_with_placeholders: Path) -> None:
    from pipeline.deployment import load_deployment

    deployment = load_deployment(REPO / "schedules")
    b = parse_bulletin(EXAMPLE.read_text(encoding="utf-8"), where="e.md", deployment=deployment).bulletin
    assert b.consultation is not None
    spec = dataclasses.replace(b.consultation, closes=dt.date(2026, 12, 10))
    b = dataclasses.replace(b, id=6, status="approved", consultation=spec)
    commune = deployment.targeted(b.targets)[0]
    plan = plan_commune_day(dt.date(2026, 12, 11), commune, bulletins=[b], recordings={}, spoken=lambda t: t)[0]
    script = compose_script(
        plan,
        templates=TemplateSet.load(REPO / "templates"),
        catalog=load_catalog(voices_with_placeholders),
        recordings={},
    )
    assert not any(CTA in c.text for c in script.cues)
    assert not any(c.key.endswith("/consultation") for c in script.cues)


def test_loa_script_reads_the_closing_date_right(lao_cai: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["--config", str(lao_cai), "bulletin", "add", str(EXAMPLE)]) == 0
    assert main(["--config", str(lao_cai), "bulletin", "approve", "1"]) == 0
    capsys.readouterr()
    code = main(
        [
            "--config",
            str(lao_cai),
            "script",
            "--commune",
            "02698",
            "--date",
            "2026-12-03",
            "--slot",
            "morning",
            "--json",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    [cta] = [c["text"] for c in data["cues"] if CTA in c["text"]]
    assert "trước ngày 20/12/2026." in cta
    spoken = normalize(cta)
    assert "trước ngày hai mươi tháng mười hai năm hai nghìn không trăm hai mươi sáu." in spoken
    assert "mã số: gờ, i dài, hai, bảy." in spoken
    keys = [c["key"] for c in data["cues"] if c["kind"] == "clip"]
    assert {"hmn/consultation", "ium/consultation", "pcc/consultation"} <= set(keys)  # Bản Xèo speaks all four


def test_spell_code() -> None:
    assert spell_code("GY27") == "gờ, i dài, hai, bảy"
    assert spell_code("bx3") == "bê, ích, ba"
