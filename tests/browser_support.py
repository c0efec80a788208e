"""Measuring pages on a phone in Chromium (launched by ``tests.chromium``)."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser

from tests.chromium import chromium
from tests.web_support import PASSWORD, Web

__all__ = ["PHONE", "chromium", "page_widths", "status_of"]

PHONE = {"width": 375, "height": 667}


def page_widths(
    browser: Browser, web: Web, paths: list[str], *, user: str | None = None, width: int = 375
) -> dict[str, int]:
    """Each page's full width (``scrollWidth``) in a ``width`` px viewport, logged in as ``user`` if given."""
    context = browser.new_context(base_url=web.url, viewport={"width": width, "height": 667}, locale="vi-VN")
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        if user is not None:
            page.goto("/login")
            page.fill("#name", user)
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()
        out = {}
        for path in paths:
            response = page.goto(path)
            assert response is not None and response.status < 500, (path, response and response.status)
            out[path] = int(page.evaluate("document.documentElement.scrollWidth"))
        return out
    finally:
        context.close()


def status_of(web: Web, path: str) -> int:
    return httpx.get(web.url + path, timeout=60).status_code
