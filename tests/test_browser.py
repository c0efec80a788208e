"""The web UI in Debian's Chromium, driven by Playwright: from writing a bulletin to the commune's download.

An editor logs in, writes a bulletin, uploads a Mông recording, previews and hears it;
an approver approves; after a build the operator of the target commune sees and
downloads it, and an operator of another commune cannot.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from pipeline.nightly import build_day
from pipeline.store import bulletins as bulletin_store
from tests import audio_fixtures as fx
from tests.web_support import PASSWORD, Web, serve_project, shared_segments, small_project, standard_users

pytestmark = [pytest.mark.audio, pytest.mark.slow]


@pytest.fixture
def web(tmp_path: Path, voices_with_placeholders: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    project = small_project(tmp_path / "p", voices_with_placeholders, segments=shared_segments(tmp_path_factory))
    db = project.db()
    standard_users(db)
    db.close()
    with serve_project(project) as web:
        yield web


def log_in(browser: Browser, web: Web, name: str) -> Page:
    page = browser.new_context(base_url=web.url, accept_downloads=True).new_page()
    page.set_default_timeout(30_000)
    page.goto("/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()
    return page


def test_from_the_editor_to_the_commune(browser: Browser, web: Web, tmp_path: Path) -> None:
    settings = web.project.settings
    today = dt.datetime.now(settings.tz).date()
    tomorrow = today + dt.timedelta(days=1)

    # the editor writes a bulletin
    editor = log_in(browser, web, "bientap")
    editor.click("text=Viết bản tin mới")
    editor.fill("#title", "Lịch tiêm vắc-xin sởi tháng 12")
    editor.fill("#source", "Trạm Y tế xã Y Tý")
    editor.fill("#valid_from", today.isoformat())
    editor.fill("#valid_until", (today + dt.timedelta(days=7)).isoformat())
    editor.check("input[name=languages][value=hmn]")
    editor.fill("#body", "Ngày mai trạm y tế tiêm vắc-xin sởi cho trẻ em từ 9 tháng tuổi.")
    editor.click("text=Lưu bản tin")
    editor.wait_for_url("**/bulletins/*")
    assert "Tiếng Mông" in editor.content() and "Còn thiếu" in editor.content()
    [b] = bulletin_store.list_bulletins(web.db)
    assert b.targets == ("bat-xat",) and b.status == "draft"

    # … uploads the Mông recording …
    wav = fx.speech(tmp_path / "tiem-chung-hmong.wav", "Bản ghi tiếng Mông về tiêm chủng")
    editor.set_input_files("#file-hmn", str(wav))
    editor.click("#file-hmn ~ button")
    editor.wait_for_selector(f"audio[src='/bulletins/{b.id}/recordings/hmn']")
    assert "Đã nhận bản ghi" in editor.content()

    # … previews and hears it
    editor.click(f"a[href='/preview?bulletin={b.id}']")
    editor.wait_for_selector("pre.cuesheet")
    assert "Ngày mai trạm y tế tiêm vắc-xin sởi" in editor.inner_text("pre.cuesheet")
    seconds = editor.eval_on_selector(
        "#preview-audio",
        """el => new Promise((resolve, reject) => {
            el.addEventListener('loadedmetadata', () => resolve(el.duration));
            el.addEventListener('error', () => reject(new Error('audio error ' + (el.error && el.error.code))));
            el.preload = 'auto';
            el.load();
        })""",
    )
    assert seconds > 5, seconds
    playing = editor.eval_on_selector("#preview-audio", "el => el.play().then(() => !el.paused)")
    assert playing

    # the approver approves
    approver = log_in(browser, web, "duyet")
    approver.goto(f"/bulletins/{b.id}")
    approver.click("button:has-text('Duyệt')")
    approver.wait_for_url("**ok=approved")
    assert "Đã duyệt" in approver.content()

    # the nightly build
    report = build_day(tomorrow, settings=settings, deployment=web.project.deployment, db=web.db, commune="02641")
    assert not report.failures and report.programs

    # the operator of Y Tý sees and downloads it
    operator = log_in(browser, web, "dai-yty")
    assert operator.url.endswith("/communes/02641")
    assert "Ngày mai" in operator.content()
    assert operator.locator("article.program audio").count() == len(report.programs)
    with operator.expect_download() as info:
        operator.click("article.program >> nth=0 >> text=Tải MP3")
    saved = tmp_path / "program.mp3"
    info.value.save_as(saved)
    assert info.value.suggested_filename == f"02641-{tomorrow.isoformat()}-morning.mp3"
    duration = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(saved)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert float(duration) > 5
    # tomorrow's slots have not started: no "Đã phát" yet, and the page says when it comes
    assert operator.locator("article.program button:has-text('Đã phát')").count() == 0
    assert "hiện khi đến giờ phát" in operator.inner_text("article.program >> nth=0")

    # an operator of another commune cannot
    other = log_in(browser, web, "dai-banlau")
    assert other.url.endswith("/communes/02695")
    response = other.goto("/communes/02641")
    assert response is not None and response.status == 404
    response = other.goto(f"/communes/02641/programs/{tomorrow.isoformat()}/morning.mp3")
    assert response is not None and response.status == 404
    assert "Lịch tiêm vắc-xin sởi" not in other.content()
