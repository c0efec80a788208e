"""The week calendar is what airs: planned by the orchestrator, with the communes' decisions."""

from __future__ import annotations

import datetime as dt
import re

from pipeline.models import Decision
from pipeline.produce import Producer
from pipeline.store import decisions as decision_store
from tests.web_support import Web, add_bulletin


def _aired_ids(page: str) -> set[int]:
    """Bulletin ids the calendar shows as items of a slot (an item carries its duration in <small>)."""
    return {int(m) for m in re.findall(r"<div>#(\d+) [^<]*<small>", page)}


def test_a_declined_bulletin_is_in_no_slot_of_the_calendar_as_in_the_nightly(web: Web) -> None:
    s, d = web.project.settings, web.project.deployment
    declined = add_bulletin(web.db, d, s, title="Họp thôn bàn đường", priority="normal")
    kept = add_bulletin(web.db, d, s, title="Lịch tiêm chủng tháng này", priority="normal")
    decision_store.save_decision(
        web.db, Decision(declined, "02641", "declined", reason="Thôn đã họp rồi", by="user:dai-yty")
    )
    tomorrow = dt.datetime.now(s.tz).date() + dt.timedelta(days=1)
    nightly = Producer(settings=s, deployment=d, db=web.db).compose_day(tomorrow, commune="02641")
    nightly_ids = {i.bulletin.id for p in nightly.plans for i in p.items}
    assert kept in nightly_ids and declined not in nightly_ids

    staff = web.client("duyet")
    page = staff.get("/calendar/02641", params={"week": tomorrow.isoformat()}).text
    aired = _aired_ids(page)
    assert kept in aired and declined not in aired
    assert f"Không phát: #{declined} Họp thôn bàn đường: xã đã quyết định không phát" in page
    # a bulletin deferred by the commune shows where it goes, in Vietnamese
    later = tomorrow + dt.timedelta(days=3)
    decision_store.save_decision(web.db, Decision(kept, "02641", "deferred", until=later, by="user:dai-yty"))
    page = staff.get("/calendar/02641", params={"week": tomorrow.isoformat()}).text
    assert f"Hoãn: #{kept} Lịch tiêm chủng tháng này: xã hoãn sang" in page
    assert "declined by" not in page and "deferred by" not in page
