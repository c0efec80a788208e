from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_sample_config_loads_with_paths_from_its_directory() -> None:
    s = load_settings(REPO / "loa.toml", environ={})
    assert s.data_dir == REPO / "data"
    assert s.templates_dir == REPO / "templates"
    assert s.db_url == f"sqlite:///{REPO / 'data' / 'loa.db'}"
    assert s.audio.bitrate_kbps == 64
    assert s.tts.engines == ("espeak",)
    assert str(s.tz) == "Asia/Ho_Chi_Minh"


def test_environment_overrides_nested_keys_and_lists(tmp_path: Path) -> None:
    cfg = tmp_path / "loa.toml"
    cfg.write_text("[audio]\nbitrate_kbps = 64\n", encoding="utf-8")
    env = {
        "LOA_AUDIO__BITRATE_KBPS": "96",
        "LOA_TTS__ENGINES": '["gtts", "espeak"]',
        "LOA_DATA_DIR": "/srv/loa",
    }
    s = load_settings(cfg, environ=env)
    assert s.audio.bitrate_kbps == 96
    assert s.tts.engines == ("gtts", "espeak")
    assert s.data_dir == Path("/srv/loa")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[audio]\nbitrate_kbps = 65\n", "loa.toml: audio.bitrate_kbps: "),
        ('timezone = "Asia/Hanoi_City"\n', "loa.toml: timezone: "),
        ("[audio]\nbitrate = 64\n", "loa.toml: audio.bitrate: "),
        ('[nightly]\ntime = "25:00"\n', "loa.toml: nightly.time: "),
        ("[tts]\nengines = []\n", "loa.toml: tts.engines: "),
        ("data_dir = [\n", "loa.toml: "),
    ],
)
def test_bad_values_name_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    cfg = tmp_path / "loa.toml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={})
    assert str(exc.value).startswith(str(tmp_path / expected))


def test_named_config_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(tmp_path / "missing.toml", environ={})
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(None, environ={"LOA_CONFIG": str(tmp_path / "missing.toml")})


def test_bad_environment_value_is_reported() -> None:
    with pytest.raises(ConfigError, match=r"audio\.bitrate_kbps"):
        load_settings(REPO / "loa.toml", environ={"LOA_AUDIO__BITRATE_KBPS": "fast"})
