"""Backup while a nightly runs, lose the data directory, restore: the same status, bulletins,
recordings and key, and the next nightly sends nothing new. A changed byte is refused. SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.nightly import run_nightly
from pipeline.ops.backup import MANIFEST, BackupRefused, make_backup, restore_backup, verify_backup
from tests import audio_fixtures as fx
from tests.conftest import Project
from tests.ops_support import Night, bring_back, scripted_night
from tests.services import Postgres
from tests.web_support import shared_segments

pytestmark = [pytest.mark.audio, pytest.mark.slow]


def cli(project: Project, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--config", str(project.config), *args])
    return code, capsys.readouterr().out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recordings(project: Project) -> dict[str, str]:
    root = project.settings.recordings_dir
    return {str(p.relative_to(root)): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def prepared_night(
    root: Path, voices: Path, factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str], url: str = ""
) -> Night:
    night = scripted_night(root, voices, segments=shared_segments(factory), database_url=url)
    bring_back(night)
    project = night.project
    wav = fx.speech(root / "hmn.wav", "Bản ghi tiếng Mông cho bản tin họp thôn")
    assert cli(project, capsys, "recording", "add", str(night.bulletin), "hmn", str(wav))[0] == 0
    assert cli(project, capsys, "bulletin", "approve", str(night.bulletin))[0] == 0
    code, _ = cli(project, capsys, "nightly", "--date", night.day.isoformat())
    assert code == 0
    return night


def snapshot(project: Project, night: Night, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    code, status = cli(project, capsys, "status", "--date", night.day.isoformat(), "--json")
    assert code == 0
    status_doc = json.loads(status)
    code, bulletins = cli(project, capsys, "bulletin", "list", "--json")
    assert code == 0
    return {
        "endpoints": status_doc["endpoints"],
        "bulletins": json.loads(bulletins),
        "recordings": recordings(project),
        "key": sha(project.settings.signing_key_file),
    }


def drill(
    night: Night,
    backup: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    lose_database: Callable[[], None],
) -> None:
    """Back up while another night builds, lose everything, restore, compare, run the next night."""
    project = night.project
    settings, deployment = project.settings, project.deployment
    before = snapshot(project, night, capsys)
    assert before["recordings"]

    busy_db = project.db()
    busy = threading.Thread(  # the following night builds and pushes while the backup is made
        target=lambda: run_nightly(
            night.day + dt.timedelta(days=1), settings=settings, deployment=deployment, db=busy_db
        ),
        daemon=True,
    )
    busy.start()
    manifest = make_backup(settings, backup)
    busy.join(timeout=600)
    assert not busy.is_alive()
    busy_db.close()
    assert any(f.path.startswith("data/recordings/") for f in manifest.files)
    assert (backup / "data" / "keys" / settings.signing_key_file.name).stat().st_mode & 0o777 == 0o600
    assert cli(project, capsys, "backup", "verify", str(backup))[0] == 0

    shutil.rmtree(settings.data_dir)  # the disk is lost
    lose_database()
    code, out = cli(project, capsys, "restore", str(backup))
    assert code == 0, out
    after = snapshot(project, night, capsys)
    assert after == before
    assert settings.signing_key_file.stat().st_mode & 0o777 == 0o600

    code, out = cli(project, capsys, "nightly", "--date", night.day.isoformat(), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert sum(e["bytes_sent"] for e in report["endpoints"]) == 0  # the endpoints already hold it all
    assert sum(e["files_sent"] for e in report["endpoints"]) == 0


def test_backup_restore_drill_on_sqlite(
    tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path_factory.mktemp("backup-sqlite")
    night = prepared_night(root / "p", voices_with_placeholders, tmp_path_factory, capsys)
    drill(night, root / "backup", capsys, lose_database=lambda: None)  # SQLite lives in the data directory


def test_a_changed_byte_a_partial_backup_and_a_full_data_dir_are_refused(
    tmp_path_factory: pytest.TempPathFactory, voices_with_placeholders: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path_factory.mktemp("backup-refused")
    night = scripted_night(root / "p", voices_with_placeholders, segments=shared_segments(tmp_path_factory))
    settings = night.project.settings
    good = root / "good"
    make_backup(settings, good)
    verify_backup(good)
    with pytest.raises(BackupRefused, match="not empty"):
        make_backup(settings, good)
    with pytest.raises(BackupRefused, match="data directory is not empty"):
        restore_backup(settings, good)  # the live data directory is never overwritten

    for name, spoil, code in (
        ("byte", lambda b: _flip_byte(b / "database" / "loa.db"), "backup.damaged"),
        ("key", lambda b: _flip_byte(next((b / "data" / "keys").iterdir())), "backup.damaged"),
        ("manifest", lambda b: _edit_manifest(b), "backup.damaged"),
        ("partial", lambda b: (b / MANIFEST).unlink(), "backup.partial"),
        ("missing", lambda b: next((b / "config" / "schedules").iterdir()).unlink(), "backup.partial"),
        ("extra", lambda b: (b / "data" / "planted.txt").write_text("x"), "backup.damaged"),
    ):
        copy = root / name
        shutil.copytree(good, copy)
        spoil(copy)
        with pytest.raises(BackupRefused) as refused:
            verify_backup(copy)
        assert refused.value.code == code, name
        assert cli(night.project, capsys, "backup", "verify", str(copy))[0] == 2
        empty = root / f"{name}-restore"
        moved = settings.model_copy(update={"data_dir": empty})
        with pytest.raises(BackupRefused):
            restore_backup(moved, copy)
        assert not empty.exists()  # nothing half-restored


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_manifest(backup: Path) -> None:
    doc = json.loads((backup / MANIFEST).read_text(encoding="utf-8"))
    doc["files"][0]["bytes"] += 1
    (backup / MANIFEST).write_text(json.dumps(doc), encoding="utf-8")


@pytest.mark.services
def test_backup_restore_drill_on_postgresql(
    tmp_path_factory: pytest.TempPathFactory,
    voices_with_placeholders: Path,
    capsys: pytest.CaptureFixture[str],
    postgres: Postgres,
    pg_url: str,  # closes every connection the test opened, at its end
) -> None:
    root = tmp_path_factory.mktemp("backup-pg")
    url = pg_url
    night = prepared_night(root / "p", voices_with_placeholders, tmp_path_factory, capsys, url)
    fresh = postgres.create_database()

    def lose_database() -> None:  # the database server is lost too: restore into a new, empty one
        text = night.project.config.read_text(encoding="utf-8").replace(url, fresh)
        night.project.config.write_text(text, encoding="utf-8")

    drill(night, root / "backup", capsys, lose_database=lose_database)
    assert (root / "backup" / "database" / "loa.pgdump").is_file()
