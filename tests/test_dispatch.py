"""Emergency dispatch end to end over SFTP to a real sshd on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline import manifest as mf
from pipeline.bench.sshd import SshServer
from pipeline.dispatch import pending_emergencies
from tests.conftest import CliResult, Project, add_bulletin

pytestmark = [pytest.mark.sshd, pytest.mark.audio, pytest.mark.slow]


def sftp_commune(server: SshServer, remote: Path) -> str:
    commune = '\n[[commune]]\ncode = "02803"\nname = "Tả Van"\nlanguages = ["vi"]\n\n'
    return commune + server.endpoint_toml("ta-van-1", remote)


@pytest.fixture
def run(small_cli: Callable[..., CliResult]) -> Callable[..., CliResult]:
    return small_cli


def test_dispatch_over_sftp(
    small: Project,
    run: Callable[..., CliResult],
    tmp_path: Path,
    sshd_running: SshServer,
) -> None:
    remote = tmp_path / "device"
    remote.mkdir()
    deployment = small.root / "schedules" / "small.toml"
    deployment.write_text(deployment.read_text() + sftp_commune(sshd_running, remote), encoding="utf-8")
    import datetime as dt

    today = dt.datetime.now(small.settings.tz).date()
    bid = add_bulletin(
        small,
        "Mưa lớn, nguy cơ lũ quét. Bà con không qua suối.",
        priority="emergency",
        targets='["02803", "02695"]',
        title="Cảnh báo lũ quét",
    )
    # make it valid today (the helper's bulletins are dated December 2026)
    from pipeline.store import bulletins as store

    db = small.db()
    t = db.table("bulletins")
    with db.begin() as conn:
        conn.execute(t.update().where(t.c.id == bid).values(valid_from=today, valid_until=today))
    assert pending_emergencies(db, settings=small.settings) == [bid]

    result = run("dispatch", str(bid), "--json")
    assert result.code == 0, result.err + result.out
    report = json.loads(result.out)
    assert {e["endpoint"]: e["status"] for e in report["endpoints"]} == {
        "ta-van-1": "delivered",
        "ban-lau-loa": "delivered",
    }
    manifest = mf.read(remote / f"emergency/{bid}/manifest.json")
    assert manifest.emergency is not None and manifest.emergency.play == "now"
    assert manifest.emergency.expires == dt.datetime.combine(
        today + dt.timedelta(days=1), dt.time(0), tzinfo=small.settings.tz
    )
    assert manifest.valid_until == manifest.emergency.expires and manifest.endpoint == "ta-van-1"
    for f in manifest.files:
        mf.check_file(remote, f)
    assert pending_emergencies(db, settings=small.settings) == []
    again = json.loads(run("dispatch", str(bid), "--json").out)
    assert sum(e["bytes_sent"] for e in again["endpoints"]) == 0
    store.withdraw(db, bid)
    assert run("dispatch", str(bid)).code == 2


def test_only_approved_emergencies_are_dispatched(small: Project, run: Callable[..., CliResult]) -> None:
    routine = add_bulletin(small, "Họp thôn.")
    draft = add_bulletin(small, "Lũ.", priority="emergency", approve=False, title="Lũ")
    assert "only emergency bulletins" in run("dispatch", str(routine)).err
    assert "approve it first" in run("dispatch", str(draft)).err


@pytest.mark.audio
def test_an_emergency_after_a_night_renders_only_the_warning(small: Project, run: Callable[..., CliResult]) -> None:
    """The line naming the commune is the nightly greeting's first sentence: a dispatch finds it made."""
    import datetime as dt

    import sqlalchemy as sa

    from pipeline.store.db import utcnow

    today = dt.datetime.now(small.settings.tz).date()
    assert run("build", "--date", today.isoformat()).code in (0, 3)
    bid = add_bulletin(small, "Mưa lớn, nguy cơ sạt lở.", priority="emergency", targets='["02695"]', title="Sạt lở")
    db = small.db()
    t = db.table("bulletins")
    with db.begin() as conn:
        conn.execute(t.update().where(t.c.id == bid).values(valid_from=today, valid_until=today))
    started = utcnow()
    assert run("dispatch", str(bid)).code == 0
    segments = db.table("segments")
    with db.begin() as conn:
        made = [r.title for r in conn.execute(sa.select(segments.c.title).where(segments.c.created_at >= started))]
        greeting = conn.execute(
            sa.select(segments.c.created_at).where(segments.c.title.like("Kính thưa bà con nhân dân xã%"))
        ).all()
    assert made, "the warning itself is rendered"
    assert greeting and not [m for m in made if m.startswith("Kính thưa")]
