"""A standard phrase recorded in Chromium on a 375 px phone with a fake microphone (an espeak-ng
WAV): the reader records the Mông greeting on /phrases, plays it back, uploads it; it waits for
approval with the reader named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from pipeline.store import phrases as phrase_store
from pipeline.store import users as user_store
from tests.test_browser_recording import browser, microphone  # noqa: F401  (Chromium with the fake microphone)
from tests.web_support import PASSWORD, Web, serve_project, small_project, standard_users

pytestmark = [pytest.mark.audio, pytest.mark.slow]


@pytest.fixture
def web(tmp_path: Path, voices_with_placeholders: Path) -> Iterator[Web]:
    from tests.web_support import _password_hash

    project = small_project(tmp_path / "p", voices_with_placeholders)
    db = project.db()
    standard_users(db)
    user_store.add_user(db, "doc-mong", password_hash=_password_hash(), role="reader", languages=("hmn",))
    db.close()
    with serve_project(project) as web:
        yield web


def test_a_reader_records_a_phrase_on_a_phone(browser: Browser, web: Web) -> None:  # noqa: F811
    context = browser.new_context(base_url=web.url, viewport={"width": 375, "height": 800})
    context.grant_permissions(["microphone"], origin=web.url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("/login")
    page.fill("#name", "doc-mong")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto("/phrases")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling on a phone
    box = page.locator("#recorder-hmn-greeting")
    box.wait_for(state="visible")
    box.locator(".rec-start").click()
    page.wait_for_selector("#recorder-hmn-greeting[data-state=recording]")
    page.wait_for_timeout(3000)
    box.locator(".rec-stop").click()
    page.wait_for_selector("#recorder-hmn-greeting .rec-upload:not([disabled])")
    assert (box.locator(".rec-playback").get_attribute("src") or "").startswith("blob:")
    box.locator(".rec-upload").click()
    try:
        page.wait_for_url("**ok=recorded**")
    except Exception:
        raise AssertionError(box.locator(".rec-status").inner_text()) from None
    assert "Đã nhận bản thu; đang chờ duyệt." in page.content()
    take = phrase_store.current(web.db)["hmn/greeting"][phrase_store.AWAITING]
    assert take.recorded_by == "doc-mong" and take.original_name.endswith(".webm") and take.duration_ms > 1500
    assert take.path.is_file() and web.project.settings.data_dir in take.path.parents
    assert errors == []
    context.close()
