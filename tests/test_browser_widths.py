"""Operator pages fit a 375 px phone (and a 1,280 px screen) in Chromium, long unbroken words included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.browser_support import chromium, page_widths
from tests.web_support import Web, add_bulletin, make_user, serve_project, small_project, standard_users

pytestmark = [pytest.mark.slow]
LONG_WORD = "Thôngbáokhẩncấp" * 12  # 180 letters, no space to break at (a title may have 200)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path) -> Iterator[Web]:
    project = small_project(tmp_path_factory.mktemp("widths") / "p", voices_with_placeholders)
    db = project.db()
    standard_users(db)
    make_user(db, "nguoi-dung-co-ten-rat-dai-" + "x" * 40, "operator", commune="02641")
    s, d = project.settings, project.deployment
    add_bulletin(db, d, s, title=f"Tin {LONG_WORD}", body=f"Nội dung {LONG_WORD * 3} hết.", approve=False)
    db.close()
    with serve_project(project) as web:
        yield web


def test_admin_users_fits_a_phone_and_a_screen(browser: Browser, web: Web) -> None:
    phone = page_widths(browser, web, ["/admin/users"], user="quantri")
    assert phone["/admin/users"] <= 375, phone
    screen = page_widths(browser, web, ["/admin/users"], user="quantri", width=1280)
    assert screen["/admin/users"] <= 1280, screen


def test_long_unbroken_words_do_not_widen_operator_pages(browser: Browser, web: Web) -> None:
    paths = ["/bulletins", "/bulletins/1", "/recordings", "/deliveries", "/communes/02641", "/audit"]
    widths = page_widths(browser, web, paths, user="quantri")
    assert all(w <= 375 for w in widths.values()), widths
