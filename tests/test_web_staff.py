"""Staff views: operators' reports per commune and date (open problems), and the week calendar."""

from __future__ import annotations

import datetime as dt

from pipeline.store import users as user_store
from tests.web_support import Web, add_bulletin, csrf_of


def _report(web: Web, client_user: str, code: str, program: str, kind: str, note: str = "") -> None:
    user = user_store.user_by_name(web.db, client_user)
    user_store.add_play_report(web.db, user=user, commune=code, program=program, kind=kind, note=note)


def test_reports_show_per_commune_and_date_with_open_problems(web: Web) -> None:
    today = dt.datetime.now(web.project.settings.tz).date()
    p1 = f"02641/{today.isoformat()}/morning"
    _report(web, "dai-yty", "02641", p1, "problem", "Loa thôn 3 không kêu")
    _report(web, "dai-banlau", "02695", f"02695/{today.isoformat()}/morning", "problem", "Mất điện")
    _report(web, "dai-banlau", "02695", f"02695/{today.isoformat()}/morning", "played")
    staff = web.client("duyet")
    page = staff.get("/operator-reports").text
    assert "Loa thôn 3 không kêu" in page and "Mất điện" in page and "1 sự cố chưa xử lý" in page
    assert "Y Tý" in page and "Bản Lầu" in page and f"ngày {today:%d/%m/%Y}" in page
    only_open = staff.get("/operator-reports", params={"open": "1"}).text
    assert "Loa thôn 3 không kêu" in only_open and "Mất điện" not in only_open
    one = staff.get("/operator-reports", params={"commune": "02695", "date": today.isoformat()}).text
    assert "Mất điện" in one and "Loa thôn 3" not in one
    assert "Mất điện" not in staff.get("/operator-reports", params={"date": "2001-01-01"}).text
    # an editor of a group sees only its communes; operators do not see the staff page
    assert web.client("dai-yty").get("/operator-reports").status_code == 403


def test_the_week_calendar_shows_slots_missing_recordings_and_deferrals(web: Web) -> None:
    s, d = web.project.settings, web.project.deployment
    bid = add_bulletin(web.db, d, s, title="Họp thôn tuần này", targets='["02641"]')
    staff = web.client("duyet")
    r = staff.get("/calendar", follow_redirects=True)
    assert r.status_code == 200
    page = staff.get("/calendar/02641").text
    assert "Lịch phát tuần của xã Y Tý" in page and f"#{bid} Họp thôn tuần này" in page
    assert f"Thiếu bản ghi: #{bid} Tiếng Mông" in page  # the bulletin lists hmn; no recording yet
    assert "Buổi sáng" in page
    # a week no broadcast can have, or no date at all, is no page (validated once: web/params.py)
    for week in ("9999-12-31", "0001-01-01", "khong-phai-ngay"):
        far = staff.get("/calendar/02641", params={"week": week})
        assert far.status_code == 404 and "Họp thôn tuần này" not in far.text, week
    assert staff.get("/calendar/99999").status_code == 404
    token = csrf_of(page)
    assert token


def test_an_editor_sees_only_the_recordings_of_the_group(web: Web) -> None:
    mine = add_bulletin(web.db, web.project.deployment, web.project.settings, targets='["bat-xat"]', approve=False)
    theirs = add_bulletin(
        web.db, web.project.deployment, web.project.settings, targets='["02695"]', title="Tin của Bản Lầu"
    )
    page = web.client("bientap").get("/recordings")
    assert page.status_code == 200
    assert f"#{mine} Họp thôn về gia hạn thẻ BHYT" in page.text
    assert "Tin của Bản Lầu" not in page.text and f'href="/bulletins/{theirs}"' not in page.text
    everything = web.client("quantri").get("/recordings").text  # an admin sees both
    assert "Tin của Bản Lầu" in everything
