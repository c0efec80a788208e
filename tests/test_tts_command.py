"""The command engine (a local program: text on stdin, WAV out) and `loa text speak`."""

from __future__ import annotations

import hashlib
import stat
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.audio import ffmpeg
from pipeline.config import AudioSettings, CommandSettings, TtsSettings
from pipeline.errors import ConfigError, RenderError, TransientRenderError
from pipeline.tts.chain import EngineChain, build_engine_chain, with_voice
from pipeline.tts.command import CommandEngine
from tests.conftest import CliResult, Project

pytestmark = pytest.mark.audio
TEXT = "Kính thưa bà con nhân dân xã Y Tý."


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def to_stdout(tmp_path: Path) -> Path:
    """Reads text on stdin, writes WAV on stdout (espeak-ng --stdout); saves what it read."""
    return script(tmp_path, "speak.sh", f'tee "{tmp_path}/heard.txt" | exec espeak-ng -v "$1" -s "$2" --stdout\n')


def test_program_writing_wav_to_stdout(to_stdout: Path, tmp_path: Path) -> None:
    engine = CommandEngine(CommandSettings(argv=(str(to_stdout), "{voice}", "{speed}"), voice="vi", speed="140"))
    dst = tmp_path / "out.wav"
    engine.synthesize(TEXT, dst)
    assert (tmp_path / "heard.txt").read_text(encoding="utf-8") == TEXT  # the text went by stdin, as UTF-8
    info = ffmpeg.probe_audio(dst, settings=AudioSettings())
    assert info.codec == "pcm_s16le" and info.duration_ms > 1000


def test_program_writing_wav_to_a_path(tmp_path: Path) -> None:
    argv = ("espeak-ng", "-v", "{voice}", "-w", "{out}", "--stdin")
    engine = CommandEngine(CommandSettings(argv=argv, voice="vi-vn-x-south", label="espeak-south"))
    dst = tmp_path / "out.wav"
    engine.synthesize(TEXT, dst)
    with wave.open(str(dst)) as w:
        assert w.getnframes() > 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temporary left behind


def test_identity_changes_with_argv_voice_and_speed(to_stdout: Path) -> None:
    base = CommandSettings(argv=(str(to_stdout), "{voice}", "{speed}"), voice="vi", speed="140")
    ids = {
        CommandEngine(base).identity(),
        CommandEngine(base.model_copy(update={"voice": "vi-vn-x-south"})).identity(),
        CommandEngine(base.model_copy(update={"speed": "120"})).identity(),
        CommandEngine(base.model_copy(update={"argv": ("other", "{voice}")})).identity(),
    }
    assert len(ids) == 4


def test_failures_are_clear(tmp_path: Path) -> None:
    dst = tmp_path / "out.wav"
    failing = script(tmp_path, "fail.sh", "echo 'model not found' >&2; exit 3\n")
    with pytest.raises(RenderError, match="model not found"):
        CommandEngine(CommandSettings(argv=(str(failing),))).synthesize(TEXT, dst)
    text_out = script(tmp_path, "text.sh", "cat\n")
    with pytest.raises(RenderError, match="not a WAV"):
        CommandEngine(CommandSettings(argv=(str(text_out),))).synthesize(TEXT, dst)
    with pytest.raises(RenderError, match="not installed"):
        CommandEngine(CommandSettings(argv=(str(tmp_path / "absent"),))).synthesize(TEXT, dst)
    slow = script(tmp_path, "slow.sh", "exec sleep 5\n")
    with pytest.raises(TransientRenderError, match=r"within 0\.5 s"):
        CommandEngine(CommandSettings(argv=(str(slow),), timeout_s=0.5)).synthesize(TEXT, dst)
    assert not dst.exists()
    with pytest.raises(ConfigError):
        CommandEngine(CommandSettings())


def test_chain_falls_back_from_a_broken_command(tmp_path: Path) -> None:
    failing = script(tmp_path, "fail.sh", "exit 1\n")
    tts = TtsSettings(engines=("command", "espeak"), command=CommandSettings(argv=(str(failing),)))
    chain = build_engine_chain(tts)
    assert isinstance(chain, EngineChain)
    assert chain.synthesize(TEXT, tmp_path / "out.wav") == "espeak"


def test_with_voice_validates_like_the_config() -> None:
    tts = with_voice("espeak", TtsSettings(), voice="vi-vn-x-south", speed="120")
    assert (tts.espeak.voice, tts.espeak.rate) == ("vi-vn-x-south", 120)
    assert with_voice("google", TtsSettings(), speed="0.9").google.speaking_rate == 0.9
    with pytest.raises(ConfigError, match="rate"):
        with_voice("espeak", TtsSettings(), speed="1000")
    with pytest.raises(ConfigError, match="no speed"):
        with_voice("gtts", TtsSettings(), speed="1")
    with pytest.raises(ConfigError, match="unknown speech engine"):
        with_voice("piper", TtsSettings())


# --- loa text speak -------------------------------------------------------------------------


def test_text_speak_writes_a_wav(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    out = tmp_path / "thu.wav"
    r = cli("text", "speak", "Họp thôn lúc 19h00 ngày 15/12", "--out", str(out))
    assert r.code == 0, r.err
    assert "espeak spoke" in r.out and "mười chín giờ" in r.out  # the spoken form was read
    info = ffmpeg.probe_audio(out, settings=AudioSettings())
    assert (info.codec, info.channels, info.sample_rate) == ("pcm_s16le", 1, 44100)
    assert info.duration_ms > 1500


def test_text_speak_with_a_named_engine_voice_and_speed(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    slow, fast = tmp_path / "slow.wav", tmp_path / "fast.wav"
    assert cli("text", "speak", TEXT, "--out", str(slow), "--engine", "espeak", "--speed", "100").code == 0
    r = cli(
        "text", "speak", TEXT, "--out", str(fast), "--engine", "espeak", "--voice", "vi-vn-x-south", "--speed", "200"
    )
    assert r.code == 0, r.err
    settings = AudioSettings()
    assert (
        ffmpeg.probe_audio(slow, settings=settings).duration_ms
        > ffmpeg.probe_audio(fast, settings=settings).duration_ms
    )
    assert hashlib.sha256(slow.read_bytes()).digest() != hashlib.sha256(fast.read_bytes()).digest()


def test_text_speak_bad_input_exits_2(cli: Callable[..., CliResult], tmp_path: Path, project: Project) -> None:
    out = tmp_path / "x.wav"
    assert cli("text", "speak", TEXT, "--out", str(out), "--speed", "120").code == 2  # --speed needs --engine
    assert cli("text", "speak", TEXT, "--out", str(out), "--engine", "piper").code == 2
    assert cli("text", "speak", "…", "--out", str(out)).code == 2
    assert not out.exists()


def test_text_speak_reports_a_vendor_without_key(
    cli: Callable[..., CliResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOA_FPT_API_KEY", raising=False)
    r = cli("text", "speak", TEXT, "--out", str(tmp_path / "x.wav"), "--engine", "fpt")
    assert r.code == 1 and "LOA_FPT_API_KEY" in r.err
    assert not (tmp_path / "x.wav").exists()
