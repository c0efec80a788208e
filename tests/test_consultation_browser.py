"""A citizen answers a consultation in Debian's Chromium on a phone-sized screen with JavaScript off.

The answer shows in the staff summary (escaped), a closed campaign refuses in Vietnamese,
the rate limit trips, and a cross-site post is refused (CSRF).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext

from pipeline.store import consultations as store
from tests.test_consultation_web import add_campaign
from tests.web_support import PASSWORD, Web, serve_project, small_project, standard_users

pytestmark = [pytest.mark.slow]
PHONE = {"width": 360, "height": 640}


@pytest.fixture
def web(tmp_path: Path, voices_with_placeholders: Path) -> Iterator[Web]:
    project = small_project(tmp_path / "p", voices_with_placeholders)
    with project.config.open("a", encoding="utf-8") as f:
        f.write("[consultation]\nanswers_per_client_per_hour = 3\n")
    db = project.db()
    standard_users(db)
    db.close()
    with serve_project(project) as served:
        yield served


def phone(browser: Browser, web: Web) -> BrowserContext:
    ctx = browser.new_context(
        base_url=web.url, viewport=PHONE, java_script_enabled=False, is_mobile=True, has_touch=True, locale="vi-VN"
    )
    ctx.set_default_timeout(30_000)
    return ctx


def test_a_citizen_answers_on_a_phone_without_javascript(browser: Browser, web: Web) -> None:
    cid = add_campaign(web)
    add_campaign(web, code="CU1", opens=-20, closes=-1)
    citizen = phone(browser, web).new_page()

    citizen.goto("/y-kien/GY27")
    width = citizen.locator("body").bounding_box()
    assert width is not None and width["width"] <= PHONE["width"]  # fits the screen
    citizen.check("input[name=q1][value=yes]")
    citizen.check("input[name=q2][value='Ngô']")
    citizen.fill("textarea[name=q3]", "<script>alert(1)</script><img src=x onerror=alert(2)> cần giống sớm")
    citizen.fill("input[name=name]", "Giàng A Páo")
    citizen.fill("input[name=phone]", "0912345678")
    citizen.select_option("select[name=commune]", "02641")
    citizen.check("input[name=consent]")
    citizen.click("button[type=submit]")
    citizen.wait_for_load_state()
    assert "Cảm ơn bà con!" in citizen.content()
    [a] = store.list_answers(web.db, cid)
    assert a.values[:2] == ("yes", "Ngô") and a.consent and a.phone == "0912345678"

    # staff see it in the summary, escaped (JavaScript off here too: nothing could run anyway,
    # so the check is on the page's text and elements)
    staff = phone(browser, web).new_page()
    staff.goto("/login")
    staff.fill("#name", "duyet")
    staff.fill("#password", PASSWORD)
    staff.click("button[type=submit]")
    staff.wait_for_load_state()
    staff.goto(f"/consultations/{cid}")
    assert staff.locator("#summary-total").inner_text().startswith("1 ý kiến")
    cell = staff.locator(f"#a{a.id} .answer-text")
    assert "<script>alert(1)</script><img src=x onerror=alert(2)>" in cell.inner_text()
    assert staff.locator(f"#a{a.id} .answer-text script").count() == 0
    assert staff.locator(f"#a{a.id} .answer-text img").count() == 0
    assert staff.locator("svg").count() >= 4  # charts drawn on the server

    # a closed campaign refuses, in Vietnamese
    citizen.goto("/y-kien/CU1")
    assert "đã kết thúc ngày" in citizen.locator("p.error").inner_text()
    assert citizen.locator("form").count() == 0


def test_rate_limit_and_csrf_in_the_browser(browser: Browser, web: Web) -> None:
    cid = add_campaign(web)
    ctx = phone(browser, web)
    citizen = ctx.new_page()
    for _ in range(3):
        citizen.goto("/y-kien/GY27")
        citizen.check("input[name=q1][value=no]")
        citizen.click("button[type=submit]")
        citizen.wait_for_load_state()
        assert "Cảm ơn bà con!" in citizen.content()
    citizen.goto("/y-kien/GY27")
    citizen.check("input[name=q1][value=no]")
    citizen.click("button[type=submit]")
    citizen.wait_for_load_state()
    assert "quá nhiều ý kiến" in citizen.content()
    assert len(store.list_answers(web.db, cid)) == 3

    # a page on another site posts the form with a token it somehow got: the browser does
    # not send the same-site cookie with it, so it is refused
    web.app.state.loa_consultation_guards.per_client._failures.clear()
    citizen.goto("/y-kien/GY27")
    token = citizen.locator("input[name=form_token]").get_attribute("value")
    assert any(c["name"] == "loa_yk" for c in ctx.cookies())  # the citizen's browser holds the cookie…
    evil = ctx.new_page()  # …and opens another site's page in the same browser
    evil.set_content(
        f'<form method="post" action="{web.url}/y-kien/GY27">'
        f'<input type="hidden" name="form_token" value="{token}">'
        '<input type="hidden" name="q1" value="yes"><button type="submit">Nhận quà</button></form>'
    )
    evil.click("button")
    evil.wait_for_load_state()
    assert "Biểu mẫu đã hết hạn" in evil.content()
    assert len(store.list_answers(web.db, cid)) == 3


def test_the_printable_poster_draws_its_qr_code(browser: Browser, web: Web) -> None:
    add_campaign(web)
    page = browser.new_context(base_url=web.url, viewport=PHONE).new_page()  # script only to measure the image
    page.goto("/y-kien/GY27/in")
    page.wait_for_load_state("load")
    width = page.evaluate("document.querySelector('img.qr').naturalWidth")
    assert width > 100, "the QR code image was not drawn"
    assert f"{web.url}/y-kien/GY27" in page.content()
