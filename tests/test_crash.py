"""Crashes: the nightly job killed with SIGKILL at random moments, then run again.

After each kill a re-run must finish the work: exit 0, the database passes its integrity
check, no bulletin, recording or delivery record is lost, every endpoint holds complete
programs (nothing partial under a final name), and the re-run sends only what had not
arrived. CRASH_KILLS sets the number of kills (default 20).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipeline import manifest as mf
from pipeline.store import open_database
from pipeline.store.recordings import current_recordings
from pipeline.store.runs import latest_deliveries
from tests import audio_fixtures as fx
from tests.conftest import REPO, Project, add_bulletin

pytestmark = [pytest.mark.slow, pytest.mark.audio]
DAY = "2026-12-01"
LOA = str(REPO / ".venv" / "bin" / "loa")
ONE_COMMUNE = """
[[commune]]
code = "02641"
name = "Y Tý"
languages = ["vi", "hmn"]
slots = [{ name = "morning", start = "05:30", max_minutes = 10 }]

  [[commune.endpoint]]
  name = "y-ty-loa"
  transport = "local"
  path = "endpoints/y-ty-loa"
"""


def endpoint_state(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()} if root.exists() else {}


def complete(root: Path) -> bool:
    manifest = root / "programs" / DAY / "manifest.json"
    if not manifest.exists():
        return False
    for f in mf.read(manifest).files:
        if (root / f.path).stat().st_size != f.bytes:
            return False
    return (root / "programs" / DAY / "manifest.json.sig").is_file()


@pytest.mark.timeout(900)
def test_killed_at_random_moments_a_rerun_completes(small: Project, tmp_path: Path) -> None:
    (small.root / "schedules" / "small.toml").write_text(ONE_COMMUNE, encoding="utf-8")
    bid = add_bulletin(small, "Thôn Tả Phìn họp lúc 7h30 ngày 02/12/2026. " * 3)
    from pipeline.intake import prepare_recording
    from pipeline.store import bulletins as store
    from pipeline.store.recordings import save_recording

    db = small.db()
    rec = prepare_recording(
        store.get_bulletin(db, bid), "hmn", fx.speech(tmp_path / "h.wav", "Tiếng Mông"), settings=small.settings
    )
    save_recording(db, rec)
    base = tmp_path / "base-data"
    shutil.copytree(small.settings.data_dir, base)
    cmd = [LOA, "--config", str(small.config), "nightly", "--date", DAY]

    started = time.monotonic()
    assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
    cold = time.monotonic() - started
    rng = random.Random(20261201)
    runs = int(os.environ.get("CRASH_KILLS", "20"))
    endpoint = small.root / "endpoints" / "y-ty-loa"
    for i in range(runs):
        shutil.rmtree(small.settings.data_dir)
        shutil.rmtree(endpoint, ignore_errors=True)
        shutil.copytree(base, small.settings.data_dir)
        moment = rng.uniform(0.05, cold)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(moment)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = endpoint_state(endpoint)
        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, f"kill {i} at {moment:.2f} s: {rerun.stderr}"
        check = open_database(small.settings.db_url)
        assert check.integrity_ok()
        assert [b.id for b in store.list_bulletins(check)] == [bid]
        assert list(current_recordings(check)) == [(bid, "hmn")]
        assert complete(endpoint), f"kill {i} at {moment:.2f} s left an incomplete program"
        assert not [p for p in endpoint.rglob("*") if ".part-" in p.name]
        [delivery] = latest_deliveries(check, DAY)
        after = endpoint_state(endpoint)
        changed = {k for k, v in after.items() if before.get(k) != v}
        assert delivery.files_sent == len(changed), f"kill {i}: sent {delivery.files_sent}, missing {len(changed)}"
        check.close()
