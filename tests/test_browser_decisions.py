"""Operator decisions in Debian's Chromium: accept, defer to a date, decline with a reason; staff see them."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import Browser

from pipeline.store import decisions as decision_store
from tests.test_browser import log_in, web  # noqa: F401 (fixture)
from tests.web_support import Web, add_bulletin

pytestmark = [pytest.mark.slow]


def test_operator_accepts_defers_and_declines_in_the_browser(browser: Browser, web: Web) -> None:  # noqa: F811
    d, s = web.project.deployment, web.project.settings
    first = add_bulletin(web.db, d, s, title="Họp thôn về gia hạn thẻ BHYT", priority="normal")
    second = add_bulletin(web.db, d, s, title="Vệ sinh môi trường cuối tuần", priority="normal")
    third = add_bulletin(web.db, d, s, title="Lịch thu thuế đất", priority="normal")
    today = dt.datetime.now(s.tz).date()
    until = today + dt.timedelta(days=3)

    op = log_in(browser, web, "dai-yty")
    op.click("text=Bản tin thông thường: xã quyết định phát")
    op.wait_for_url("**/communes/02641/decisions")
    card = f"#bulletin-{first}"
    op.click(f"{card} button:has-text('Nhận phát')")
    op.wait_for_url("**ok=accepted")
    assert "xã nhận phát bản tin" in op.content()

    op.fill(f"#until-{second}", until.isoformat())
    op.click(f"#bulletin-{second} button:has-text('Hoãn')")
    op.wait_for_url("**ok=deferred")

    # declining without a reason is refused with a Vietnamese message beside the bulletin
    op.click(f"#bulletin-{third} button:has-text('Từ chối')")
    op.wait_for_selector(f"#bulletin-{third} .field-error")
    assert "hãy ghi lý do từ chối" in op.inner_text(f"#bulletin-{third} .field-error")
    op.fill(f"#reason-{third}", "Xã đã thông báo ở họp thôn")
    op.click(f"#bulletin-{third} button:has-text('Từ chối')")
    op.wait_for_url("**ok=declined")

    decided = decision_store.decisions(web.db)
    assert {(k[0], v.decision, v.until, v.reason) for k, v in decided.items()} == {
        (first, "accepted", None, ""),
        (second, "deferred", until, ""),
        (third, "declined", None, "Xã đã thông báo ở họp thôn"),
    }
    assert op.inner_text(f"#bulletin-{second} .current").startswith("Quyết định hiện tại: Hoãn đến ngày")

    staff = log_in(browser, web, "duyet")
    staff.goto(f"/bulletins/{third}")
    row = staff.inner_text("table.decisions")
    assert "Y Tý (02641)" in row and "Từ chối" in row and "Xã đã thông báo ở họp thôn" in row
