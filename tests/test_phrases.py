"""Standard phrases from the web: a Mông greeting recorded by a reader (uploaded through the route,
the same gate as readings), approved by an approver, replaces its placeholder in the next build —
the aired segment's sha256 changes, it is no longer a placeholder, and the build report stops
naming it; the repository's voices/ is never written."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from pathlib import Path

import pytest

from pipeline.models import Segment
from pipeline.nightly import build_day
from pipeline.produce import BuildReport
from pipeline.store import users as user_store
from tests.conftest import Project
from tests.web_support import add_bulletin, csrf_of, serve_project, small_project, standard_users

pytestmark = [pytest.mark.audio]
KEY = "hmn/greeting"


def _tone(path: Path) -> bytes:
    """Two seconds of a voice-like tone, as a phone would upload it (Ogg Vorbis is not needed: WAV)."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=220:duration=2",
         "-af", "volume=0.3", "-ar", "44100", "-ac", "1", str(path)],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


def _build(project: Project, day: dt.date) -> BuildReport:
    db = project.db()
    try:
        report = build_day(day, settings=project.settings, deployment=project.deployment, db=db)
    finally:
        db.close()
    assert not report.failures, report.failures
    return report


def _greeting(report: BuildReport, program: str) -> Segment:
    [p] = [p for p in report.programs if p.id == program]
    [seg] = [s for s in p.items if s.source is not None and s.source.clip == KEY]
    return seg


def test_an_approved_phrase_replaces_its_placeholder_in_the_next_build(
    tmp_path: Path, voices_with_placeholders: Path
) -> None:
    project = small_project(tmp_path / "p", voices_with_placeholders)
    catalog_file = project.root / "voices" / "catalog.toml"
    catalog_before = catalog_file.read_bytes()
    db = project.db()
    try:
        standard_users(db)
        user_store.add_user(db, "doc-mong", password_hash=user_store_hash(), role="reader", languages=("hmn",))
        add_bulletin(db, project.deployment, project.settings, targets='["all"]')
    finally:
        db.close()
    day = dt.datetime.now(project.settings.tz).date() + dt.timedelta(days=1)
    morning = f"02641/{day.isoformat()}/morning"

    before = _build(project, day)
    assert morning in before.placeholders[KEY]  # the build report names where the stand-in airs
    assert before.summary()["placeholders"][KEY] == before.placeholders[KEY]
    assert not any(p.startswith("02695/") for p in before.placeholders[KEY])  # Bản Lầu has no Mông
    old = _greeting(before, morning)
    assert old.source is not None and old.source.placeholder

    take = _tone(tmp_path / "chao.wav")
    with serve_project(project) as web:
        reader = web.client("doc-mong")
        page = reader.get("/phrases")
        assert page.status_code == 200
        assert "Lời chào bà con bằng tiếng Mông" in page.text and "Bản tạm (máy đọc)" in page.text
        assert "Tiếng Dao" not in page.text  # a reader sees their languages only
        csrf = csrf_of(page.text)
        sent = reader.post(
            "/phrases/hmn/greeting/recording",
            data={"csrf_token": csrf, "language": "hmn"},
            files={"file": ("chao.wav", take, "audio/wav")},
        )
        assert sent.status_code == 303, sent.text[-500:]
        refused = reader.post(
            "/phrases/hmn/greeting/recording",
            data={"csrf_token": csrf, "language": "hmn"},
            files={"file": ("chao.m3u", b"#EXTM3U\nfile:///etc/passwd\n", "audio/x-mpegurl")},
        )
        assert refused.status_code == 400 and 'id="upload-error"' in refused.text  # the same gate as readings
        assert reader.post("/phrases/hmn/greeting/approve", data={"csrf_token": csrf}).status_code == 403

        assert _greeting(_build(project, day), morning).sha256 == old.sha256  # not approved: nothing changes

        approver = web.client("duyet")
        page = approver.get("/phrases")
        assert "Đã thu, chờ duyệt" in page.text and "Bản thu của doc-mong" in page.text
        take_url = page.text.split('src="/phrases/takes/', 1)[1].split('"', 1)[0]
        assert approver.get(f"/phrases/takes/{take_url}").content[:4] == b"RIFF"  # the approver hears it first
        approved = approver.post("/phrases/hmn/greeting/approve", data={"csrf_token": csrf_of(page.text)})
        assert approved.status_code == 303
        page = approver.get("/phrases")
        assert "Đã duyệt" in page.text and "người thu: doc-mong" in page.text

    after = _build(project, day)
    new = _greeting(after, morning)
    assert new.source is not None and not new.source.placeholder
    assert new.sha256 != old.sha256 and new.key != old.key
    assert hashlib.sha256(new.path.read_bytes()).hexdigest() == new.sha256
    assert KEY not in after.placeholders and KEY not in after.summary()["placeholders"]
    assert "chime/open" in after.placeholders  # the other stand-ins are still named
    assert catalog_file.read_bytes() == catalog_before  # never by editing the repository
    assert list((project.settings.data_dir / "phrases" / "hmn").glob("greeting-*.wav"))


def user_store_hash() -> str:
    from tests.web_support import _password_hash

    return _password_hash()
