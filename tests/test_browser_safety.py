"""The issue-18 checks in Debian's Chromium (Playwright): hostile uploads, an emergency's
confirmation and reload, X-Forwarded-For rotation, error pages, the audit log, a phone."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from pipeline.store import audit
from pipeline.store import bulletins as bulletin_store
from tests import audio_fixtures as fx
from tests.test_browser import log_in, web  # noqa: F401 (fixture)
from tests.test_uploads import hostile
from tests.web_support import PASSWORD, Web, add_bulletin

pytestmark = [pytest.mark.audio, pytest.mark.slow]

VI = {
    "m3u8": "danh sách phát",
    "concat": "danh sách ghép tệp",
    "file-ref-metadata": "đường dẫn tới tệp khác",
    "empty": "tệp rỗng",
    "mp3-named-wav": "đuôi tệp không khớp",
    "image": "tệp ảnh",
}


def test_hostile_uploads_are_refused_in_vietnamese(browser: Browser, web: Web, tmp_path: Path) -> None:  # noqa: F811
    bid = add_bulletin(web.db, web.project.deployment, web.project.settings, approve=False)
    editor = log_in(browser, web, "bientap")
    for kind, says in VI.items():
        (tmp_path / kind).mkdir()
        path, _ = hostile(tmp_path / kind, kind)
        editor.goto(f"/bulletins/{bid}")
        editor.set_input_files("#file-hmn", str(path))
        editor.click("#file-hmn ~ button")
        editor.wait_for_selector("#upload-error")
        assert says in editor.inner_text("#upload-error").lower(), kind
    assert bulletin_store.get_bulletin(web.db, bid).status == "draft"
    # a real recording still goes in, and is what plays back
    editor.goto(f"/bulletins/{bid}")
    editor.set_input_files("#file-hmn", str(fx.sine(tmp_path / "that.wav", seconds=1.0)))
    editor.click("#file-hmn ~ button")
    editor.wait_for_selector(f"audio[src='/bulletins/{bid}/recordings/hmn']")


def test_an_emergency_is_confirmed_once_and_a_reload_sends_nothing(browser: Browser, web: Web) -> None:  # noqa: F811
    eid = add_bulletin(
        web.db,
        web.project.deployment,
        web.project.settings,
        title="Cảnh báo lũ quét",
        priority="emergency",
        targets='["02641"]',
        approve=False,
        body="Mưa lớn, không qua ngầm tràn.",
    )
    approver = log_in(browser, web, "duyet")
    approver.goto(f"/bulletins/{eid}")
    approver.click("text=Phát khẩn ngay")
    approver.wait_for_url(f"**/bulletins/{eid}/dispatch")
    what = approver.inner_text("#what-happens")
    assert "1 xã" in what and "duyệt trước khi phát" in what
    assert "Y Tý" in approver.content()
    approver.dblclick("#confirm-button")  # a double click does one thing
    approver.wait_for_url("**/actions/*")
    approver.wait_for_selector("text=Đã phát khẩn bản tin")
    result_url = approver.url
    approver.reload()
    approver.wait_for_selector("text=Đã phát khẩn bản tin")
    approver.go_back()
    approver.go_forward()
    assert approver.url == result_url
    assert len(audit.entries(web.db, action="bulletin.dispatched")) == 1
    assert bulletin_store.get_bulletin(web.db, eid).status == "approved"


def test_rotating_x_forwarded_for_in_the_browser_is_still_limited(browser: Browser, web: Web) -> None:  # noqa: F811
    statuses = []
    for i in range(6):
        context = browser.new_context(base_url=web.url, extra_http_headers={"X-Forwarded-For": f"203.0.113.{i}"})
        page = context.new_page()
        page.goto("/login")
        page.fill("#name", "duyet")
        page.fill("#password", "sai-mật-khẩu")
        with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as info:
            page.click("button[type=submit]")
        statuses.append(info.value.status)
        context.close()
    assert statuses == [401] * 5 + [429]


def test_error_pages_are_vietnamese(browser: Browser, web: Web) -> None:  # noqa: F811
    page = log_in(browser, web, "duyet")
    for path, says in [
        ("/khong-co-trang-nay", "Không tìm thấy trang này"),
        ("/bulletins/99999999999999999999999", "Thông tin gửi lên không hợp lệ (số bản tin)"),  # web/params.py
        ("/bulletins/abc", "Thông tin gửi lên không hợp lệ"),
        ("/admin/users", "không có quyền"),
    ]:
        response = page.goto(path)
        assert response is not None and response.status in (403, 404), path
        assert says in page.content(), path
    r = page.request.put(f"{web.url}/bulletins")
    assert r.status == 405 and "Không thể làm việc này theo cách đó" in r.text()


def test_the_audit_log_in_the_browser_and_tables_on_a_phone(browser: Browser, web: Web) -> None:  # noqa: F811
    bid = add_bulletin(web.db, web.project.deployment, web.project.settings, approve=False)
    approver = log_in(browser, web, "duyet")
    approver.goto(f"/bulletins/{bid}")
    approver.click("a.button:has-text('Duyệt')")  # no Mông reading: the confirmation asks again
    approver.check("#confirm-missing")
    approver.click("#confirm-button")
    approver.wait_for_url("**ok=approved")
    context = browser.new_context(base_url=web.url, viewport={"width": 375, "height": 740}, accept_downloads=True)
    admin = context.new_page()
    admin.goto("/login")
    admin.fill("#name", "quantri")
    admin.fill("#password", PASSWORD)
    admin.click("button[type=submit]")
    admin.wait_for_load_state()
    admin.goto("/admin/audit")
    text = admin.inner_text("#audit")
    assert "Duyệt bản tin" in text and f"bulletin:{bid}" in text and "duyet" in text
    # on a phone each cell carries its column's label
    label = admin.eval_on_selector(
        "#audit tbody tr td[data-label='Việc']", "el => getComputedStyle(el, '::before').content"
    )
    assert "Việc" in label
    with admin.expect_download() as info:
        admin.click("text=Tải về (CSV)")
    saved = Path(info.value.path())
    assert "bulletin.approved" in saved.read_text(encoding="utf-8-sig")
    context.close()


def test_management_reports_and_calendar_in_the_browser(browser: Browser, web: Web) -> None:  # noqa: F811
    from pipeline.store import users as user_store

    admin = log_in(browser, web, "quantri")
    # a new operator, made in the UI, logs in
    admin.goto("/admin/users")
    admin.fill("#new-name", "dai-yty-moi")
    admin.select_option("section.card select[name=role]", "operator")
    admin.select_option("section.card select[name=scope]", "commune:02641")
    admin.fill("#new-password", "mật-khẩu-mới-dài")
    admin.click("section.card button:has-text('Tạo')")
    admin.wait_for_url("**ok=created")
    assert "dai-yty-moi" in admin.inner_text("#users")
    # a token is shown once
    admin.goto("/admin/tokens")
    admin.select_option("#endpoint", "y-ty-loa")
    admin.click("button:has-text('Cấp mã')")
    token = admin.inner_text("#token-value")
    assert len(token) > 30
    admin.goto("/admin/tokens")
    assert token not in admin.content() and "Đang dùng" in admin.content()
    # the operator reports a problem; staff see it as open, and on the week calendar the slots
    user_store.add_play_report(
        web.db,
        user=user_store.user_by_name(web.db, "dai-yty"),
        commune="02641",
        program="02641/2026-12-02/morning",
        kind="problem",
        note="Loa thôn 3 không kêu",
    )
    staff = log_in(browser, web, "duyet")
    staff.click("text=Báo cáo của xã")
    staff.check("input[name=open]")
    staff.click("button:has-text('Lọc')")
    staff.wait_for_url("**open=1**")
    assert "Loa thôn 3 không kêu" in staff.inner_text("#reports") and "Buổi sáng ngày 02/12/2026" in staff.content()
    staff.click("text=Lịch tuần")
    staff.wait_for_selector("#calendar")
    assert "Buổi sáng" in staff.inner_text("#calendar thead")
    assert staff.locator("#calendar tbody tr").count() == 7
