"""Recording a reading in Chromium with a fake microphone (an espeak-ng WAV), playing it back,
uploading it; level warnings at upload. Debian's Chromium driven by Playwright."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from pipeline.store.recordings import current_recordings
from tests import audio_fixtures as fx
from tests.chromium import chromium
from tests.web_support import PASSWORD, Web, add_bulletin, serve_project, small_project, standard_users

pytestmark = [pytest.mark.audio, pytest.mark.slow]


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the fake microphone hears: Vietnamese speech from espeak-ng, 48 kHz mono WAV."""
    d = tmp_path_factory.mktemp("mic")
    raw = d / "raw.wav"
    subprocess.run(
        ["espeak-ng", "-v", "vi", "-w", str(raw), "Kính thưa bà con, thôn Tả Phìn họp lúc bảy giờ ba mươi tối nay."],
        check=True,
        timeout=60,
    )
    mic = d / "mic.wav"
    fx.ffmpeg("-i", str(raw), "-ar", "48000", "-ac", "1", "-c:a", "pcm_s16le", str(mic))
    return mic


@pytest.fixture(scope="module")
def browser(microphone: Path) -> Iterator[Browser]:
    """Chromium whose microphone hears ``microphone`` (no permission prompt)."""
    fake_mic = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")
    with chromium(*fake_mic, f"--use-file-for-fake-audio-capture={microphone}") as b:
        yield b


@pytest.fixture
def web(tmp_path: Path, voices_with_placeholders: Path) -> Iterator[Web]:
    project = small_project(tmp_path / "p", voices_with_placeholders)
    db = project.db()
    standard_users(db)
    db.close()
    with serve_project(project) as web:
        yield web


def editor_page(browser: Browser, web: Web) -> Page:
    context = browser.new_context(base_url=web.url)
    context.grant_permissions(["microphone"], origin=web.url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto("/login")
    page.fill("#name", "bientap")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def test_record_play_back_and_upload_a_vietnamese_reading(browser: Browser, web: Web) -> None:
    bid = add_bulletin(web.db, web.project.deployment, web.project.settings)
    page = editor_page(browser, web)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"/bulletins/{bid}")
    box = page.locator("#recorder-vi")
    box.wait_for(state="visible")  # the script found MediaRecorder and showed the recorder
    box.locator(".rec-start").click()
    page.wait_for_selector("#recorder-vi[data-state=recording]")
    page.wait_for_timeout(3000)  # let the fake microphone speak for a while
    box.locator(".rec-stop").click()
    page.wait_for_selector("#recorder-vi .rec-upload:not([disabled])")
    src = box.locator(".rec-playback").get_attribute("src") or ""
    assert src.startswith("blob:")
    playing = box.locator(".rec-playback").evaluate(
        """el => el.play().then(() => new Promise(r => setTimeout(() => r(el.currentTime > 0 && !el.error), 700)))"""
    )
    assert playing, "the recording plays back"
    box.locator(".rec-upload").click()
    try:
        page.wait_for_url("**ok=recording**")
    except Exception:
        raise AssertionError(box.locator(".rec-status").inner_text()) from None
    assert "Đã nhận bản ghi" in page.content()
    assert "người đọc" in page.inner_text("section.recording >> nth=0")
    page.wait_for_selector(f"audio[src='/bulletins/{bid}/recordings/vi']")
    rec = current_recordings(web.db, [bid])[(bid, "vi")]
    assert rec.codec == "opus" and rec.original_name.endswith(".webm")
    assert rec.duration_ms > 1500
    assert errors == []


def test_silent_upload_gets_a_vietnamese_warning(browser: Browser, web: Web, tmp_path: Path) -> None:
    bid = add_bulletin(web.db, web.project.deployment, web.project.settings)
    page = editor_page(browser, web)
    page.goto(f"/bulletins/{bid}")
    silent = fx.silence(tmp_path / "im-lang.wav", seconds=4)
    page.set_input_files("#file-vi", str(silent))
    page.click("#file-vi ~ button")
    page.wait_for_url("**ok=recording**")
    warning = page.inner_text("p.level-warning")
    assert "phần lớn là im lặng" in warning and warning.startswith("Tiếng Việt")
    assert (bid, "vi") in current_recordings(web.db, [bid])  # accepted, with the warning
