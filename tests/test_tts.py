"""Speech engines: real espeak-ng; gTTS's own code against a local fake of Google's endpoint."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.audio import ffmpeg, ingest
from pipeline.config import AudioSettings, EspeakSettings, GttsSettings, TtsSettings
from pipeline.errors import RenderError, TransientRenderError
from pipeline.tts import EngineChain, EspeakEngine, GttsEngine, build_engine_chain
from tests import audio_fixtures as fx
from tests.fake_gtts import PATH, FakeGtts

pytestmark = pytest.mark.audio

A = AudioSettings()
TEXT = "Kính thưa bà con, chiều nay có họp thôn."


@pytest.fixture(scope="module")
def google_mp3() -> bytes:
    return fx.mp3_bytes()


@pytest.fixture
def fake(google_mp3: bytes) -> Iterator[FakeGtts]:
    with FakeGtts(google_mp3, slow_s=1.0) as server:
        yield server


def gtts(fake: FakeGtts, sleeps: list[float] | None = None, **kw: float) -> GttsEngine:
    settings = GttsSettings(base_url=fake.base_url, **{"timeout_s": 2.0, "retries": 2, "backoff_s": 0.0, **kw})
    return GttsEngine(settings, sleep=(sleeps.append if sleeps is not None else lambda _s: None))


# --- espeak-ng ---------------------------------------------------------------------


def test_espeak_speaks_vietnamese(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = EspeakEngine(EspeakSettings())
    engine.check()
    caplog.set_level(logging.INFO)
    engine.synthesize(TEXT, tmp_path / "a.wav")
    info = ffmpeg.probe_audio(tmp_path / "a.wav", settings=A)
    assert info.codec == "pcm_s16le" and info.duration_ms > 1000
    assert TEXT not in caplog.text
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]


def test_espeak_identity_names_version_voice_and_settings() -> None:
    identity = EspeakEngine(EspeakSettings(rate=170, pitch=40)).identity()
    assert identity.startswith("espeak-ng 1.") and "voice=vi" in identity and "rate=170 pitch=40" in identity
    assert "voice=vi-vn-x-south" in EspeakEngine(EspeakSettings(), variant="south").identity()


def test_espeak_text_is_not_a_command(tmp_path: Path) -> None:
    text = f"$(touch {tmp_path}/pwned); `touch {tmp_path}/pwned2` -w {tmp_path}/x.wav"
    EspeakEngine(EspeakSettings()).synthesize(text, tmp_path / "a.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_espeak_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="make setup"):
        EspeakEngine(EspeakSettings(binary="/nonexistent/espeak-ng")).synthesize(TEXT, tmp_path / "a.wav")
    with pytest.raises(RenderError, match="voice does not exist"):
        EspeakEngine(EspeakSettings(voice="xx-nosuch")).synthesize(TEXT, tmp_path / "a.wav")
    with pytest.raises(RenderError, match="not installed"):
        EspeakEngine(EspeakSettings(voice="xx-nosuch")).check()
    with pytest.raises(RenderError, match="empty text"):
        EspeakEngine(EspeakSettings()).synthesize("  ", tmp_path / "a.wav")
    with pytest.raises(TransientRenderError, match="did not finish within"):
        EspeakEngine(EspeakSettings(timeout_s=0.05)).synthesize(TEXT * 200, tmp_path / "a.wav")
    assert list(tmp_path.iterdir()) == []


# --- gTTS against the fake ------------------------------------------------------------


def test_gtts_success_goes_through_gtts_own_request_and_parsing(fake: FakeGtts, tmp_path: Path) -> None:
    gtts(fake).synthesize(TEXT, tmp_path / "g.mp3")
    info = ffmpeg.probe_audio(tmp_path / "g.mp3", settings=A)
    assert info.codec == "mp3" and info.duration_ms > 300
    assert [(r["path"], r["text"]) for r in fake.requests] == [(PATH, TEXT)]


def test_gtts_long_text_is_sent_in_parts_and_joined(fake: FakeGtts, tmp_path: Path) -> None:
    long = " ".join([TEXT] * 8)
    gtts(fake).synthesize(long, tmp_path / "g.mp3")
    assert len(fake.requests) > 1
    one = ffmpeg.probe_audio(tmp_path / "g.mp3", settings=A)
    wav = ingest.ingest_audio(tmp_path / "g.mp3", tmp_path / "g.wav", settings=A, trim_silence=False)
    assert one.codec == "mp3" and wav.duration_ms > 300 * len(fake.requests)


def test_gtts_slow_answer_times_out_and_is_transient(fake: FakeGtts, tmp_path: Path) -> None:
    fake.modes = ["slow"]
    started = time.monotonic()
    with pytest.raises(TransientRenderError, match="no answer in time"):
        gtts(fake, timeout_s=0.3, retries=1).synthesize(TEXT, tmp_path / "g.mp3")
    assert time.monotonic() - started < 1.5
    assert len(fake.requests) == 2
    assert not (tmp_path / "g.mp3").exists()


@pytest.mark.parametrize("mode", ["429", "500"])
def test_gtts_retries_throttling_and_server_errors_with_backoff(fake: FakeGtts, tmp_path: Path, mode: str) -> None:
    fake.modes = [mode, mode, "success"]
    sleeps: list[float] = []
    gtts(fake, sleeps, backoff_s=0.5, retries=3).synthesize(TEXT, tmp_path / "g.mp3")
    assert sleeps == [0.5, 1.0]
    assert [r["mode"] for r in fake.requests] == [mode, mode, "success"]
    assert ffmpeg.probe_audio(tmp_path / "g.mp3", settings=A).codec == "mp3"


def test_gtts_gives_up_after_retries(fake: FakeGtts, tmp_path: Path) -> None:
    fake.modes = ["500"]
    sleeps: list[float] = []
    with pytest.raises(TransientRenderError, match="failed 4 times") as err:
        gtts(fake, sleeps, backoff_s=0.5, retries=3).synthesize(TEXT, tmp_path / "g.mp3")
    assert "HTTP 500" in str(err.value) and fake.base_url in str(err.value)
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(fake.requests) == 4


def test_gtts_refusal_is_permanent_and_not_retried(fake: FakeGtts, tmp_path: Path) -> None:
    fake.modes = ["403"]
    with pytest.raises(RenderError, match="HTTP 403") as err:
        gtts(fake).synthesize(TEXT, tmp_path / "g.mp3")
    assert not isinstance(err.value, TransientRenderError)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(("mode", "words"), [("garbage", "non-audio bytes"), ("html", "no audio")])
def test_gtts_garbage_is_transient_and_not_retried(fake: FakeGtts, tmp_path: Path, mode: str, words: str) -> None:
    fake.modes = [mode]
    with pytest.raises(TransientRenderError, match=words):
        gtts(fake).synthesize(TEXT, tmp_path / "g.mp3")
    assert len(fake.requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_gtts_text_without_words_is_refused_before_any_request(fake: FakeGtts, tmp_path: Path) -> None:
    for text in ["", "  ", "...!"]:
        with pytest.raises(RenderError) as err:
            gtts(fake).synthesize(text, tmp_path / "g.mp3")
        assert not isinstance(err.value, TransientRenderError)
    assert fake.requests == []


def test_gtts_unreachable_host_is_transient(tmp_path: Path) -> None:
    engine = GttsEngine(GttsSettings(base_url="http://127.0.0.1:9", retries=0, timeout_s=1.0))
    with pytest.raises(TransientRenderError, match="cannot connect"):
        engine.synthesize(TEXT, tmp_path / "g.mp3")


# --- the chain ---------------------------------------------------------------------


def test_chain_falls_back_to_espeak_when_google_fails(fake: FakeGtts, tmp_path: Path) -> None:
    fake.modes = ["500"]
    chain = EngineChain([gtts(fake, retries=1), EspeakEngine(EspeakSettings())])
    assert chain.synthesize(TEXT, tmp_path / "seg.speech") == "espeak"
    assert ffmpeg.probe_audio(tmp_path / "seg.speech", settings=A).codec == "pcm_s16le"
    assert len(fake.requests) == 2


def test_chain_uses_gtts_when_it_answers(fake: FakeGtts, tmp_path: Path) -> None:
    chain = EngineChain([gtts(fake), EspeakEngine(EspeakSettings())])
    assert chain.synthesize(TEXT, tmp_path / "seg.speech") == "gtts"
    assert ffmpeg.probe_audio(tmp_path / "seg.speech", settings=A).codec == "mp3"
    assert " > " in chain.identity() and chain.names == ("gtts", "espeak")


def test_chain_reports_every_engine_when_all_fail(fake: FakeGtts, tmp_path: Path) -> None:
    fake.modes = ["500"]
    broken = EspeakEngine(EspeakSettings(binary="/nonexistent/espeak-ng"))
    with pytest.raises(RenderError) as err:
        EngineChain([gtts(fake, retries=0), broken]).synthesize(TEXT, tmp_path / "seg.speech")
    assert not isinstance(err.value, TransientRenderError)
    assert "gtts: " in str(err.value) and "espeak: " in str(err.value) and "HTTP 500" in str(err.value)
    with pytest.raises(TransientRenderError):
        EngineChain([gtts(fake, retries=0)]).synthesize(TEXT, tmp_path / "seg.speech")


def test_build_engine_chain_follows_settings_order() -> None:
    chain = build_engine_chain(TtsSettings(engines=("gtts", "espeak"), variant="south"))
    assert chain.names == ("gtts", "espeak")
    assert "vi-vn-x-south" in chain.identity()
    assert build_engine_chain(TtsSettings()).names == ("espeak",)
