"""Which endpoints the delivery records say already hold what the outbox has for them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipeline.models import Delivery
from pipeline.store import open_database
from pipeline.store.runs import held_states, record_delivery

NOW = dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.UTC)


def delivery(endpoint: str, status: str, attempts: int, state: str | None, minutes_ago: int) -> Delivery:
    return Delivery(
        endpoint=endpoint,
        commune="02641",
        program="2026-12-02",
        status=status,
        attempts=attempts,
        finished_at=NOW - dt.timedelta(minutes=minutes_ago),
        state=state,
    )


def test_only_the_last_delivery_that_connected_and_succeeded_counts(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'loa.db'}")
    for d in (
        delivery("fresh", "delivered", 1, "A", 30),
        delivery("fresh", "delivered", 0, "A", 5),  # a skip proves nothing new, but does not hide the real one
        delivery("then-failed", "delivered", 1, "A", 60),
        delivery("then-failed", "failed", 3, None, 20),
        delivery("old", "delivered", 1, "A", 13 * 60),
        delivery("only-skipped", "delivered", 0, "A", 5),
        delivery("changed", "delivered", 1, "A", 50),
        delivery("changed", "delivered", 2, "B", 10),
    ):
        record_delivery(db, d)
    held = held_states(
        db, ["fresh", "then-failed", "old", "only-skipped", "changed", "never"], since=NOW - dt.timedelta(hours=12)
    )
    assert held == {"fresh": "A", "changed": "B"}
