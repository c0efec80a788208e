"""Incremental days: a program whose inputs did not change is not composed again."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from pipeline.composecache import KEEP_DAYS, CachedProgram, ComposeCache, Digests, digest
from pipeline.intake import prepare_recording
from pipeline.models import Bulletin
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
    cache.put(DAY, "abc", CachedProgram("02641/x", ("a recording",), ("k",)), [unit])
    assert cache.get(DAY, "abc") == CachedProgram("02641/x", ("a recording",), ("k",))
    assert cache.units(DAY, ["k"], {}) == {"k": unit}
    assert cache.units(DAY, ["k"], {"k": unit}) == {}, "a unit already known is not read again"
    (tmp_path / DAY.isoformat() / "bad.json").write_text("{", encoding="utf-8")
    assert cache.get(DAY, "bad") is None
    (tmp_path / DAY.isoformat() / "units" / "k.json").write_text("[", encoding="utf-8")
    assert cache.units(DAY, ["k"], {}) is None, "a damaged unit: the program is composed again"
    assert cache.units(DAY, ["gone"], {}) is None
    cache.prune(DAY + dt.timedelta(days=KEEP_DAYS))
    assert cache.get(DAY, "abc") is not None
    cache.prune(DAY + dt.timedelta(days=KEEP_DAYS + 1))
    assert cache.get(DAY, "abc") is None


def test_what_programs_share_is_digested_once_and_the_digest_still_sees_every_change() -> None:
    bulletin = Bulletin("Họp thôn", "meeting", "normal", "UBND", "", DAY, DAY, (), ("vi",), "Nội dung.", id=1)
    digests = Digests()
    whole = digest({"b": bulletin}, [bulletin])
    assert digests({"b": bulletin}, [bulletin]) == digests({"b": bulletin}, [bulletin]) != whole
    revised = dataclasses.replace(bulletin, body="Nội dung mới.", revision=2)
    assert digests([revised]) != digests([bulletin])
    assert Digests()([bulletin]) == digests([bulletin]), "the same inputs, the same digest in every run"


@pytest.mark.audio
def test_a_kept_unit_that_is_gone_composes_its_program_again(small: Project) -> None:
    add_bulletin(small, "Thôn Tả Phìn họp lúc 7h30 ngày 02/12/2026 về gia hạn thẻ BHYT.")
    first = producer(small).compose_day(DAY)
    units = small.settings.data_dir / "cache" / "composed" / DAY.isoformat() / "units"
    victim = next(iter(first.units))
    (units / f"{victim}.json").unlink()
    again = producer(small).compose_day(DAY)
    users = [c.name for c in first.composed if victim in c.keys]
    # the first program that needs it is composed again and keeps it again; the others find it
    assert list(again.recomposed) == users[:1]
    assert (units / f"{victim}.json").is_file()
    assert again.units == first.units
