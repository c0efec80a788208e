"""Concurrency: bulletins saved while the nightly job runs (SQLite WAL, busy timeouts)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pipeline.store import bulletins as store
from tests.conftest import REPO, SHORT_BULLETIN, Project, add_bulletin

pytestmark = [pytest.mark.slow, pytest.mark.audio]
LOA = str(REPO / ".venv" / "bin" / "loa")


def test_saving_bulletins_while_the_nightly_job_runs(small: Project, tmp_path: Path) -> None:
    add_bulletin(small, "Họp thôn về gia hạn thẻ bảo hiểm y tế. " * 6)
    base = [LOA, "--config", str(small.config)]
    nightly = subprocess.Popen(
        [*base, "nightly", "--date", "2026-12-01"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    outcomes = []
    i = 0
    while nightly.poll() is None or i < 5:
        i += 1
        f = tmp_path / f"b{i}.md"
        text = SHORT_BULLETIN.format(priority="routine", targets='["all"]', body=f"Thông báo số {i}.")
        f.write_text(text.replace("Họp thôn về gia hạn thẻ BHYT", f"Thông báo số {i}"), encoding="utf-8")
        added = subprocess.run([*base, "bulletin", "add", "--json", str(f)], capture_output=True, text=True, timeout=60)
        new_id = json.loads(added.stdout)[0]["id"] if added.returncode == 0 else 0
        approved = subprocess.run(
            [*base, "bulletin", "approve", str(new_id)], capture_output=True, text=True, timeout=60
        )
        outcomes.append((added.returncode, approved.returncode, added.stderr + approved.stderr))
    _, err = nightly.communicate(timeout=300)
    assert nightly.returncode == 0, err
    assert all(a == 0 and b == 0 for a, b, _ in outcomes), outcomes
    assert not any("locked" in e for _, _, e in outcomes)
    assert len(store.list_bulletins(small.db())) == i + 1
    assert small.db().integrity_ok()
