"""The runner page: approvers see queues and workers; others are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.services import Worker, start_workers
from tests.web_support import Web, serve_project, small_project, standard_users


def test_runner_page_in_process_and_roles(web: Web) -> None:
    page = web.client("duyet").get("/runner")
    assert page.status_code == 200
    assert "Chế độ chạy: <strong>trong tiến trình</strong>" in page.text
    assert web.client("quantri").get("/runner").status_code == 200
    for user in ("bientap", "dai-yty"):
        assert web.client(user).get("/runner").status_code == 403
    assert web.client().get("/runner").status_code == 303  # to the login page


@pytest.mark.services
@pytest.mark.slow
def test_runner_page_shows_queue_depth_and_workers(
    tmp_path: Path, voices_with_placeholders: Path, redis_url: str, workers: list[Worker]
) -> None:
    project = small_project(tmp_path / "p", voices_with_placeholders)
    project.config.write_text(
        project.config.read_text(encoding="utf-8") + f'[runner]\nkind = "celery"\nbroker_url = "{redis_url}"\n',
        encoding="utf-8",
    )
    db = project.db()
    standard_users(db)
    db.close()
    broker = redis.Redis.from_url(redis_url)
    broker.lpush("loa", b"{}", b"{}", b"{}")  # three units waiting on a queue no worker takes
    start_workers(workers, project.config, redis_url, count=1, concurrency=1, queues="loa-urgent")
    try:
        with serve_project(project) as web:
            page = web.client("duyet").get("/runner")
    finally:
        broker.delete("loa")
        broker.close()
    assert page.status_code == 200
    assert "<tr><td>Chương trình hằng ngày (loa)</td><td>3</td></tr>" in page.text
    assert "<tr><td>Khẩn cấp (loa-urgent)</td><td>0</td></tr>" in page.text
    assert "Máy chạy đang hoạt động: 1" in page.text
