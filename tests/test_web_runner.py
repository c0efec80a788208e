"""The runner page: approvers see queues and workers; others are refused."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

from pipeline import liveness
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


@pytest.mark.services
def test_runner_page_shows_each_workers_heartbeat_in_vietnam_time(
    tmp_path: Path, voices_with_placeholders: Path, redis_url: str
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
    now = liveness.server_time(broker)
    gone = now - 600  # ten minutes without a beat: lost
    for name, host, pid, at in (("w1@may-a", "may-a", 4242, now), ("w2@may-b", "may-b", 5151, gone)):
        broker.hset(liveness.WORKERS_KEY, name, json.dumps({"host": host, "pid": pid, "started": at, "at": at}))
    broker.close()
    with serve_project(project) as web:
        page = web.client("duyet").get("/runner")
    assert page.status_code == 200
    local = dt.datetime.fromtimestamp(gone, tz=ZoneInfo("Asia/Ho_Chi_Minh"))
    text = page.text
    assert "Nhịp tim của các máy chạy" in text
    assert "<td>w1@may-a</td><td>may-a</td><td>4242</td>" in text
    assert f"<td>w2@may-b</td><td>may-b</td><td>5151</td><td>{local:%H:%M:%S} ngày {local:%d/%m/%Y} (" in text
    row_a, row_b = text.split("<td>w1@may-a</td>")[1], text.split("<td>w2@may-b</td>")[1]
    assert row_a.split("</tr>")[0].endswith("<td>Còn hoạt động</td>")
    assert "Mất liên lạc" in row_b.split("</tr>")[0]
