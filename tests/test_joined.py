"""The one joined-MP3 cache (pipeline/audio/joined.py): joined once, reused by every use."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.audio import ffmpeg, ffmpeg_write, joined, mastering
from pipeline.audio.types import Id3Tags
from pipeline.config import Settings
from pipeline.files import sha256_file
from tests import audio_fixtures as fx

pytestmark = pytest.mark.audio

TAGS = Id3Tags(title="Xã Y Tý — buổi sáng", album="Y Tý — 08/12/2026 — morning", language="vi")


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("parts")
    out = []
    for i, seconds in enumerate((0.6, 0.9)):
        src = fx.sine(d / f"{i}.wav", seconds=seconds)
        out.append(mastering.master_mp3(src, d / f"{i}.mp3", settings=Settings().audio, tags=TAGS).path)
    return out


@pytest.fixture
def joins(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The destinations ffmpeg really joined into, in order."""
    done: list[Path] = []
    real: Callable[..., Any] = ffmpeg_write.concat_mp3

    def counting(parts: list[Path], dst: Path, **kw: Any) -> Any:
        done.append(dst)
        return real(parts, dst, **kw)

    monkeypatch.setattr(ffmpeg_write, "concat_mp3", counting)
    return done


def test_the_same_parts_and_tags_are_joined_once(parts: list[Path], joins: list[Path], tmp_path: Path) -> None:
    cache = joined.JoinedCache(tmp_path / "joined", Settings().audio)
    sha = [sha256_file(p) for p in parts]
    first = cache.join(parts, part_sha256=sha, tags=TAGS)
    stamp = first.stat().st_mtime_ns
    again = cache.join(parts, part_sha256=sha, tags=TAGS)
    assert again == first and first.stat().st_mtime_ns == stamp
    assert joins == [first]
    info = ffmpeg.probe_audio(first, settings=Settings().audio)
    assert info.codec == "mp3" and info.duration_ms == pytest.approx(1500, abs=80)
    # other tags or other parts are another file, never the stale one
    other = cache.join(parts, part_sha256=sha, tags=Id3Tags(title="Nghe thử", album="Loa — nghe thử", language="vi"))
    reversed_ = cache.join(parts[::-1], part_sha256=sha[::-1], tags=TAGS)
    assert len({first, other, reversed_}) == 3 and len(joins) == 3
    with pytest.raises(ValueError, match="2 parts: 1 digests"):
        cache.join(parts, part_sha256=sha[:1], tags=TAGS)


def test_package_download_and_archive_share_one_cache(parts: list[Path], joins: list[Path], tmp_path: Path) -> None:
    """The single file in the outbox, the operator's download and the public archive's copy of
    the same join are one file of the cache (hard links), joined by ffmpeg once."""
    from pipeline.models import Commune, Program, Segment
    from pipeline.package import _single_file, program_tags
    from pipeline.publish.aired import AiredItem, AiredPart
    from pipeline.publish.audio import published_mp3

    settings = Settings(data_dir=tmp_path / "data")
    day = dt.date(2026, 12, 8)
    commune = Commune(code="02641", name="Y Tý", group=None, languages=("vi",), slots=())
    segs = tuple(
        Segment(
            key=f"{i}" * 64,
            path=p,
            duration_ms=600,
            kind="speech",
            language="vi",
            title="t",
            bytes=p.stat().st_size,
            sha256=sha256_file(p),
        )
        for i, p in enumerate(parts)
    )
    start = dt.datetime(2026, 12, 8, 6, 30, tzinfo=settings.tz)
    program = Program(
        id=f"02641/{day}/morning",
        commune="02641",
        date=day,
        slot="morning",
        start=start,
        kind="program",
        priority="routine",
        valid_until=day,
        items=segs,
    )
    root = settings.outbox_dir / "02641"
    single = root / "programs" / str(day) / "morning.mp3"
    _single_file(commune, program, single, root, settings)
    [cached] = joins
    assert cached.parent == settings.cache_dir / "joined" and os.path.samefile(single, cached)
    # the operator's download of the same program (routes_communes.program_mp3) joins with the same tags
    download = joined.joined_cache(settings).join(
        parts,
        part_sha256=[s.sha256 for s in segs],
        tags=program_tags(commune, kind="program", slot="morning", date=day),
    )
    assert download == cached and len(joins) == 1
    # packaging again does not join again, and the file in the outbox stays the cache's
    _single_file(commune, program, single, root, settings)
    assert len(joins) == 1 and os.path.samefile(single, cached)
    # the public archive's MP3 of a bulletin is joined into the same cache and linked from there
    item = AiredItem(
        commune="02641",
        date=day,
        slot="morning",
        start=start,
        program_id=program.id,
        kind="program",
        bulletin_id=7,
        language="vi",
        parts=tuple(AiredPart(s.path, s.sha256, s.bytes, s.duration_ms, s.kind) for s in segs),
    )
    published = published_mp3(item, settings=settings)
    assert len(joins) == 2 and joins[1].parent == cached.parent and os.path.samefile(published, joins[1])
    published.unlink()
    assert os.path.samefile(published_mp3(item, settings=settings), joins[1]) and len(joins) == 2
