"""The clip library: catalog loading, checks, placeholder generation, ``loa voices``."""

from __future__ import annotations

import dataclasses
import json
import shutil
import wave
from pathlib import Path

import pytest

from pipeline.audio.ffmpeg import probe_audio
from pipeline.cli import main
from pipeline.config import Settings, load_settings
from pipeline.errors import ConfigError
from pipeline.voices import CHIMES, STANDARD_KEYS, check_voices, load_catalog, make_placeholders, standard_keys
from tests.conftest import REPO, Project


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(REPO / "loa.toml", environ={})


def copy_voices(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("lexicon.vi.toml"))
    return dst


def test_the_repository_catalog_has_every_standard_clip() -> None:
    catalog = load_catalog(REPO / "voices")
    keys = {c.key for c in catalog.clips}
    assert set(standard_keys(["vi", "hmn", "ium", "pcc"])) <= keys
    assert len(standard_keys(["vi", "hmn"])) == len(CHIMES) + len(STANDARD_KEYS)  # vi needs no clips
    for clip in catalog.clips:
        assert clip.translation, f"{clip.key}: a Vietnamese translation tells the deployment what to record"
        assert clip.language == ("zxx" if clip.key.startswith("chime/") else clip.key.split("/")[0])
        assert clip.file.is_relative_to((REPO / "voices").resolve())


def test_placeholders_are_labelled_audio_and_generation_is_idempotent(tmp_path: Path, settings: Settings) -> None:
    voices = tmp_path / "voices"
    voices.mkdir()
    shutil.copy(REPO / "voices" / "catalog.toml", voices / "catalog.toml")
    catalog = load_catalog(voices)
    made = make_placeholders(catalog, settings=settings)
    assert sorted(made) == sorted(c.file for c in catalog.clips if c.placeholder)
    for clip in catalog.clips:
        info = probe_audio(clip.file, settings=settings.audio)
        assert info.sample_rate == settings.audio.sample_rate
        if clip.key.startswith("chime/"):
            assert info.duration_ms == pytest.approx(900, abs=30)
        else:  # a 300 ms tone, then espeak-ng saying "Bản ghi mẫu." and the translation
            assert info.duration_ms > 2_000
            with wave.open(str(clip.file), "rb") as w:
                assert w.getnframes() / w.getframerate() * 1000 == pytest.approx(info.duration_ms, abs=30)
    stamps = {c.key: c.file.stat().st_mtime_ns for c in catalog.clips}
    assert make_placeholders(catalog, settings=settings) == []
    assert {c.key: c.file.stat().st_mtime_ns for c in catalog.clips} == stamps
    one = dataclasses.replace(catalog, clips=catalog.clips[-1:])
    assert make_placeholders(one, settings=settings, force=True) == [catalog.clips[-1].file]
    assert catalog.clips[-1].file.stat().st_mtime_ns > stamps[catalog.clips[-1].key]


def test_check_lists_placeholders_missing_unreadable_and_unlisted(
    tmp_path: Path, settings: Settings, voices_with_placeholders: Path
) -> None:
    voices = copy_voices(voices_with_placeholders, tmp_path / "voices")
    problems = check_voices(load_catalog(voices), settings=settings, languages=["vi", "hmn"])
    assert {p.problem for p in problems} == {"placeholder"}
    assert len(problems) == len(load_catalog(voices).clips)

    (voices / "placeholders" / "hmn" / "intro.wav").unlink()
    (voices / "placeholders" / "pcc" / "outro.wav").write_bytes(b"RIFF not really a wave file")
    text = (voices / "catalog.toml").read_text(encoding="utf-8")
    start = text.index('[[clip]]\nkey = "ium/greeting"')
    end = text.index("[[clip]]", start + 1)
    (voices / "catalog.toml").write_text(text[:start] + text[end:], encoding="utf-8")
    problems = check_voices(load_catalog(voices), settings=settings, languages=["vi", "hmn", "ium", "pcc"])
    found = {(p.key, p.problem) for p in problems if p.problem != "placeholder"}
    assert found == {("hmn/intro", "missing"), ("pcc/outro", "unreadable"), ("ium/greeting", "not in catalog")}


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        ('key = "hmn/x"\nlanguage = "hmn"\nfile = "x.wav"\nvoice = "A"', "unknown field 'voice'"),
        ('key = "hmn/x"\nlanguage = "fr"\nfile = "x.wav"', "language: unknown 'fr'"),
        ('key = "hmn/x"\nlanguage = "hmn"\nfile = "../x.wav"', "is outside"),
        ('key = "hmn/x"\nlanguage = "hmn"', "file: missing"),
    ],
)
def test_catalog_errors_name_the_file_and_clip(tmp_path: Path, clip: str, message: str) -> None:
    (tmp_path / "catalog.toml").write_text(f"[[clip]]\n{clip}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"catalog\.toml: clip\[0\]: .*" + message.replace("(", r"\(")):
        load_catalog(tmp_path)


def test_catalog_duplicate_key_bad_toml_and_no_file(tmp_path: Path) -> None:
    one = '[[clip]]\nkey = "hmn/x"\nlanguage = "hmn"\nfile = "x.wav"\n'
    (tmp_path / "catalog.toml").write_text(one + one, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"clip\[1\]: key 'hmn/x' is listed twice"):
        load_catalog(tmp_path)
    (tmp_path / "catalog.toml").write_text("[[clip]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"catalog\.toml"):
        load_catalog(tmp_path)
    with pytest.raises(ConfigError, match="cannot read the clip catalog"):
        load_catalog(tmp_path / "nowhere")


def test_loa_voices_check_and_placeholders(small: Project, capsys: pytest.CaptureFixture[str]) -> None:
    def loa(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--config", str(small.config), "voices", *args])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = loa("check", "--json")
    assert code == 0  # placeholders alone are reported, not a failure
    rows = json.loads(out)
    assert rows and {r["problem"] for r in rows} == {"placeholder"}
    assert "hmn/intro" in {r["key"] for r in rows}

    (small.root / "voices" / "placeholders" / "hmn" / "intro.wav").unlink()
    code, out, err = loa("check")
    assert code == 3 and "hmn/intro" in out and "missing" in out
    assert "voices: 1 clips missing or unreadable: hmn/intro" in err

    code, out, _ = loa("placeholders")
    assert code == 0 and out.strip() == "1 placeholder clips made"
    assert (small.root / "voices" / "placeholders" / "hmn" / "intro.wav").is_file()
