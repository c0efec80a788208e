"""FPT.AI, Viettel AI and Google Cloud TTS adapters against local fakes that answer as documented."""

from __future__ import annotations

import base64
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.audio import ffmpeg
from pipeline.config import (
    AudioSettings,
    EspeakSettings,
    FptSettings,
    GoogleTtsSettings,
    OutboundSettings,
    TtsSettings,
    ViettelSettings,
)
from pipeline.errors import ConfigError, RenderError, TransientRenderError
from pipeline.tts import EngineChain, EspeakEngine
from pipeline.tts.chain import build_engine_chain
from pipeline.tts.cloud import retry_after_s
from pipeline.tts.fpt import FptEngine
from pipeline.tts.google_cloud import GoogleCloudEngine
from pipeline.tts.viettel import ViettelEngine
from tests import audio_fixtures as fx
from tests.fake_vendors import FPT_PATH, GOOGLE_PATH, VIETTEL_PATH, FakeVendors

pytestmark = pytest.mark.audio

KEY = "sk-test-9f8e7d6c5b4a-SECRET"
ENV = {"LOA_FPT_API_KEY": KEY, "LOA_VIETTEL_TOKEN": KEY, "LOA_GOOGLE_TTS_KEY": KEY}
TEXT = "Kính thưa bà con, chiều nay có họp thôn."
LOOPBACK = OutboundSettings(allow_loopback=True)  # the fake vendors listen on 127.0.0.1
FAST = {"timeout_s": 2.0, "retries": 2, "backoff_s": 0.5, "backoff_max_s": 30.0}


@pytest.fixture(scope="module")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    wav = fx.sine(tmp_path_factory.mktemp("v") / "v.wav", seconds=0.5, rate=16000, channels=1)
    return fx.mp3_bytes(), wav.read_bytes()


@pytest.fixture
def fake(sounds: tuple[bytes, bytes]) -> Iterator[FakeVendors]:
    with FakeVendors(mp3=sounds[0], wav=sounds[1], key=KEY, slow_s=1.0) as server:
        yield server


def engine(vendor: str, fake: FakeVendors, sleeps: list[float], env: dict[str, str] | None = None, **kw: Any) -> Any:
    env = ENV if env is None else env
    if vendor == "fpt":
        s = FptSettings(base_url=fake.url(FPT_PATH), poll_interval_s=0.25, poll_attempts=5, **{**FAST, **kw})
        return FptEngine(s, sleep=sleeps.append, environ=env, outbound=LOOPBACK)
    if vendor == "viettel":
        return ViettelEngine(
            ViettelSettings(base_url=fake.url(VIETTEL_PATH), **{**FAST, **kw}),
            sleep=sleeps.append,
            environ=env,
            outbound=LOOPBACK,
        )
    return GoogleCloudEngine(
        GoogleTtsSettings(base_url=fake.url(GOOGLE_PATH), **{**FAST, **kw}),
        sleep=sleeps.append,
        environ=env,
        outbound=LOOPBACK,
    )


VENDORS = ["fpt", "viettel", "google"]


@pytest.mark.parametrize("vendor", VENDORS)
def test_success_writes_audio_ffmpeg_reads(vendor: str, fake: FakeVendors, tmp_path: Path) -> None:
    sleeps: list[float] = []
    dst = tmp_path / "out.audio"
    engine(vendor, fake, sleeps).synthesize(TEXT, dst)
    info = ffmpeg.probe_audio(dst, settings=AudioSettings())
    assert info.duration_ms > 300
    expected = fake.wav if vendor == "viettel" else fake.mp3
    assert dst.read_bytes() == expected
    req = fake.requests[-1]
    if vendor == "fpt":  # text as the body, settings as headers, then polling the async link
        assert req["text"] == TEXT and req["headers"]["voice"] == "banmai" and req["headers"]["speed"] == "0"
        assert req["headers"]["format"] == "mp3"
        assert list(fake.polls.values()) == [fake.pending_polls + 1]
        assert sleeps == [0.25] * fake.pending_polls
    elif vendor == "viettel":
        assert req["json"]["text"] == TEXT and req["json"]["voice"] == "hn-quynhanh"
        assert req["json"]["speed"] == 1.0 and req["json"]["tts_return_option"] == 2
    else:
        assert req["json"] == {
            "input": {"text": TEXT},
            "voice": {"languageCode": "vi-VN", "name": "vi-VN-Neural2-A"},
            "audioConfig": {"audioEncoding": "MP3", "speakingRate": 1.0},
        }
        assert KEY not in req["path"]  # the key goes in a header, never in the URL


@pytest.mark.parametrize("vendor", VENDORS)
def test_quota_exceeded_honours_retry_after_then_succeeds(vendor: str, fake: FakeVendors, tmp_path: Path) -> None:
    fake.modes = ["429", "success"]
    fake.retry_after = "7"
    sleeps: list[float] = []
    engine(vendor, fake, sleeps).synthesize(TEXT, tmp_path / "out.audio")
    assert sleeps[0] == 7.0  # Retry-After, not the 0.5 s backoff
    assert [r["mode"] for r in fake.requests] == ["429", "success"]


@pytest.mark.parametrize("vendor", VENDORS)
def test_quota_exhausted_is_transient_after_retries(vendor: str, fake: FakeVendors, tmp_path: Path) -> None:
    fake.modes = ["429"]
    fake.retry_after = "600"
    sleeps: list[float] = []
    with pytest.raises(TransientRenderError, match="429"):
        engine(vendor, fake, sleeps).synthesize(TEXT, tmp_path / "out.audio")
    assert len(fake.requests) == 3 and sleeps == [30.0, 30.0]  # capped at backoff_max_s
    assert not (tmp_path / "out.audio").exists()


@pytest.mark.parametrize("vendor", VENDORS)
def test_server_errors_back_off_exponentially(vendor: str, fake: FakeVendors, tmp_path: Path) -> None:
    fake.modes = ["500", "500", "success"]
    sleeps: list[float] = []
    engine(vendor, fake, sleeps).synthesize(TEXT, tmp_path / "out.audio")
    assert sleeps[:2] == [0.5, 1.0]


@pytest.mark.parametrize("vendor", VENDORS)
def test_bad_key_is_permanent_and_not_retried(vendor: str, fake: FakeVendors, tmp_path: Path) -> None:
    sleeps: list[float] = []
    with pytest.raises(RenderError) as info:
        engine(vendor, fake, sleeps, env={k: "wrong-key" for k in ENV}).synthesize(TEXT, tmp_path / "out.audio")
    assert not isinstance(info.value, TransientRenderError)
    assert "wrong-key" not in str(info.value)
    assert len(fake.requests) == 1 and sleeps == []


@pytest.mark.parametrize("vendor", VENDORS)
def test_timeout_is_retried_then_transient(vendor: str, fake: FakeVendors, tmp_path: Path) -> None:
    fake.modes = ["slow"]
    sleeps: list[float] = []
    with pytest.raises(TransientRenderError, match=r"no answer within 0\.3 s"):
        engine(vendor, fake, sleeps, timeout_s=0.3, retries=1).synthesize(TEXT, tmp_path / "out.audio")
    assert len(fake.requests) == 2


@pytest.mark.parametrize("vendor", VENDORS)
def test_answer_without_audio_is_an_error(vendor: str, fake: FakeVendors, tmp_path: Path) -> None:
    fake.modes = ["notaudio"]
    with pytest.raises(RenderError):
        engine(vendor, fake, []).synthesize(TEXT, tmp_path / "out.audio")
    assert not (tmp_path / "out.audio").exists()


@pytest.mark.parametrize("vendor", VENDORS)
def test_missing_key_names_the_variable(vendor: str, fake: FakeVendors, tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="LOA_"):
        engine(vendor, fake, [], env={}).synthesize(TEXT, tmp_path / "out.audio")
    assert fake.requests == []


def test_key_from_a_secret_file(fake: FakeVendors, tmp_path: Path) -> None:
    secret = tmp_path / "google.key"
    secret.write_text(KEY + "\n")
    e = engine("google", fake, [], env={}, key_file=secret, key_env=None)
    e.synthesize(TEXT, tmp_path / "out.audio")
    assert fake.requests[-1]["headers"]["X-Goog-Api-Key"] == KEY
    with pytest.raises(RenderError, match="cannot read the key file"):
        engine("google", fake, [], env={}, key_file=tmp_path / "absent.key").synthesize(TEXT, tmp_path / "o2")


def test_fpt_audio_never_ready_is_transient(fake: FakeVendors, tmp_path: Path) -> None:
    fake.pending_polls = 100
    sleeps: list[float] = []
    with pytest.raises(TransientRenderError, match="not ready after 5 polls"):
        engine("fpt", fake, sleeps).synthesize(TEXT, tmp_path / "out.audio")
    assert sleeps == [0.25] * 4


def test_fpt_settings_travel_as_headers(fake: FakeVendors, tmp_path: Path) -> None:
    engine("fpt", fake, [], voice="lannhi", speed=-1).synthesize(TEXT, tmp_path / "out.audio")
    headers = fake.requests[-1]["headers"]
    assert (headers["voice"], headers["speed"], headers["api_key"]) == ("lannhi", "-1", KEY)


@pytest.mark.parametrize("vendor", VENDORS)
def test_key_is_never_logged(vendor: str, fake: FakeVendors, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.modes = ["429", "500", "badkey"]
    with pytest.raises(RenderError) as info:
        engine(vendor, fake, []).synthesize(TEXT, tmp_path / "out.audio")
    fake.modes = ["success"]
    engine(vendor, fake, []).synthesize(TEXT, tmp_path / "out.audio")
    assert caplog.records  # the retries were logged …
    assert KEY not in caplog.text  # … without the key
    assert KEY not in str(info.value)


def test_identity_names_engine_voice_and_speed() -> None:
    ids = {
        FptEngine(FptSettings(voice="leminh", speed=1)).identity(),
        FptEngine(FptSettings(voice="leminh", speed=2)).identity(),
        FptEngine(FptSettings(voice="lannhi", speed=1)).identity(),
        ViettelEngine(ViettelSettings(speed=1.1)).identity(),
        GoogleCloudEngine(GoogleTtsSettings(voice="vi-VN-Wavenet-B")).identity(),
        GoogleCloudEngine(GoogleTtsSettings(speaking_rate=0.9)).identity(),
    }
    assert len(ids) == 6
    assert "voice=leminh speed=2" in FptEngine(FptSettings(voice="leminh", speed=2)).identity()


def test_chain_falls_back_from_a_refused_vendor_to_espeak(fake: FakeVendors, tmp_path: Path) -> None:
    fake.modes = ["429"]
    fake.retry_after = "1"
    chain = EngineChain([engine("fpt", fake, []), engine("google", fake, [], env={}), EspeakEngine(EspeakSettings())])
    dst = tmp_path / "out.wav"
    assert chain.synthesize(TEXT, dst) == "espeak"
    assert dst.read_bytes()[:4] == b"RIFF"
    assert "fpt.ai" in chain.identity() and "google-cloud-tts" in chain.identity()


def test_chain_uses_the_vendor_when_it_answers(fake: FakeVendors, tmp_path: Path) -> None:
    chain = EngineChain([engine("viettel", fake, []), EspeakEngine(EspeakSettings())])
    assert chain.synthesize(TEXT, tmp_path / "out.audio") == "viettel"


def test_settings_build_the_chain_in_order(tmp_path: Path) -> None:
    s = TtsSettings(engines=("fpt", "viettel", "google", "espeak"))
    assert build_engine_chain(s).names == ("fpt", "viettel", "google", "espeak")
    with pytest.raises(ConfigError, match="argv"):
        build_engine_chain(TtsSettings(engines=("command",)))


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after_s("12") == 12.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert retry_after_s("soon") is None and retry_after_s(None) is None


def test_google_audio_is_decoded_from_base64(fake: FakeVendors, tmp_path: Path) -> None:
    engine("google", fake, []).synthesize(TEXT, tmp_path / "g.mp3")
    assert base64.b64encode((tmp_path / "g.mp3").read_bytes()) == base64.b64encode(fake.mp3)
    subprocess.run(["ffprobe", "-v", "error", str(tmp_path / "g.mp3")], check=True)
