"""Debian's Chromium driven by Playwright, for the browser tests (a pytest plugin of conftest).

``browser`` is one headless Chromium per test module; ``chromium(*extra_args)`` starts one
with more switches (a fake microphone, say) for a module that overrides ``browser``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
#: No GPU, no calls home (updates, sync, background fetches), sound may start without a click.
ARGS = (
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
)


@contextmanager
def chromium(*extra_args: str) -> Iterator[Browser]:
    """A headless Chromium (``--no-sandbox`` when run as root), closed at the end of the block."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make setup` (installs Debian's chromium)"
    args = [*ARGS, *extra_args, *(["--no-sandbox"] if os.geteuid() == 0 else [])]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the test module."""
    with chromium() as b:
        yield b
