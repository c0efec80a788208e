"""Incremental days: a program whose inputs did not change is not composed again."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.composecache import KEEP_DAYS, CachedProgram, ComposeCache
from pipeline.intake import prepare_recording
from pipeline.produce import Producer
from pipeline.store import bulletins as store
from pipeline.store.recordings import save_recording
from pipeline.units import RenderUnit
from tests import audio_fixtures as fx
from tests.conftest import Project, add_bulletin

DAY = dt.date(2026, 12, 1)


def producer(project: Project) -> Producer:
    return Producer(settings=project.settings, deployment=project.deployment, db=project.db())


def record(project: Project, bid: int, path: Path, words: str) -> None:
    db = project.db()
    rec = prepare_recording(store.get_bulletin(db, bid), "hmn", fx.speech(path, words), settings=project.settings)
    save_recording(db, rec)


@pytest.mark.audio
def test_a_changed_recording_recomposes_only_the_programs_that_use_it(small: Project, tmp_path: Path) -> None:
    bid = add_bulletin(small, "Thôn Tả Phìn họp lúc 7h30 ngày 02/12/2026 về gia hạn thẻ BHYT.")
    record(small, bid, tmp_path / "first.wav", "Tiếng Mông")
    first = producer(small).compose_day(DAY)
    every = sorted(c.name for c in first.composed)
    assert sorted(first.recomposed) == every and len(every) == 4

    again = producer(small).compose_day(DAY)
    assert again.recomposed == (), "nothing changed: nothing composed"
    assert [c.keys for c in again.composed] == [c.keys for c in first.composed]
    assert again.units == first.units, "the kept units are the composed ones, field for field"

    record(small, bid, tmp_path / "second.wav", "Tiếng Mông, lần hai")
    changed = producer(small).compose_day(DAY)
    uses_it = sorted(f"02641/{DAY}/{slot}" for slot in ("morning", "evening"))  # Y Tý airs Mông; Bản Lầu does not
    assert sorted(changed.recomposed) == uses_it
    new = {c.name: c.keys for c in changed.composed}
    old = {c.name: c.keys for c in first.composed}
    assert all(new[name] != old[name] for name in uses_it), "the new recording is in Y Tý's programs"
    assert all(new[name] == old[name] for name in old if name not in uses_it)


def test_old_dates_are_pruned_and_a_damaged_entry_is_composed_again(tmp_path: Path) -> None:
    cache = ComposeCache(tmp_path)
    unit = RenderUnit(key="k", kind="pause", language="vi", title="", where="line 1", ms=500)
    cache.put(DAY, "abc", CachedProgram("02641/x", ("a recording",), (unit,)))
    assert cache.get(DAY, "abc") == CachedProgram("02641/x", ("a recording",), (unit,))
    (tmp_path / DAY.isoformat() / "bad.json").write_text("{", encoding="utf-8")
    assert cache.get(DAY, "bad") is None
    cache.prune(DAY + dt.timedelta(days=KEEP_DAYS))
    assert cache.get(DAY, "abc") is not None
    cache.prune(DAY + dt.timedelta(days=KEEP_DAYS + 1))
    assert cache.get(DAY, "abc") is None
